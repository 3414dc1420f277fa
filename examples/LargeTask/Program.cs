using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Apd.Samples.LargeTask;
using Spectre.Console;

// A task larger than memory: write millions of augmented Fashion-MNIST rows to an ML.NET binary .idv file, then train
// APD on it straight from the file. Fit streams the file every epoch; its memory does not grow with the rows.
const string Usage = """
    Usage: dotnet run -c Release --project examples/LargeTask -- <write|fit|chart> [options]

      write --file F [--rows 2000000] [--data full|subset|DIR] [--seed 1]
            writes F (ML.NET binary .idv): random training images shifted by up to 2 pixels, with noise, permuted by
            a fixed pixel permutation; Label = class name. 2,000,000 rows = 6.3 GB of features.
      fit   --file F [--rows N] [--epochs 1] [--loading auto|inmemory|streaming] [--pool 50000] [--data ...] [--csv C]
            [--hidden 256,128] [--batch 100]
            trains one APD task on F (its first N rows), shows a progress bar, prints seconds per epoch, the peak
            working set of Fit and the accuracy on the test images (permuted like the task); appends a line to C.
      chart --csv C --png P
            draws peak memory against rows from the lines fit appended to C.
    """;

string command = args.Length > 0 ? args[0] : "--help";
string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
long Long(string name, long fallback) => Option(name) is { } v ? long.Parse(v, CultureInfo.InvariantCulture) : fallback;

switch (command)
{
    case "write":
    {
        string file = Option("--file") ?? throw new ArgumentException("write needs --file.");
        long rows = Long("--rows", 2_000_000);
        var (train, _) = LoadFashionMnist(Option("--data"));
        var task = new AugmentedImages(train, (int)Long("--seed", 1));
        var ml = new MLContext(seed: 1);
        var clock = Stopwatch.StartNew();
        WithProgress($"writing {rows:N0} rows", rows, report =>
        {
            var view = ml.Data.LoadFromEnumerable(Counted(task.Rows(rows), report));
            using var stream = File.Create(file);
            ml.Data.SaveAsBinary(view, stream);
        });
        AnsiConsole.MarkupLine($"Wrote [bold]{Markup.Escape(file)}[/]: {rows:N0} rows, {new FileInfo(file).Length / 1e9:F2} GB on disk, {clock.Elapsed.TotalSeconds:F0} s.");
        return 0;
    }
    case "fit":
    {
        string file = Option("--file") ?? throw new ArgumentException("fit needs --file.");
        var (_, test) = LoadFashionMnist(Option("--data"), testOnly: true);
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromBinary(file);
        if (Option("--rows") is { } limit) data = ml.Data.TakeRows(data, long.Parse(limit, CultureInfo.InvariantCulture));
        int epochs = (int)Long("--epochs", 1);
        var options = new ApdTrainer.Options
        {
            NumberOfEpochs = epochs,
            Seed = 1,
            HiddenLayerSizes = (Option("--hidden") ?? "256,128").Split(',').Select(int.Parse).ToArray(),
            BatchSize = (int)Long("--batch", 100),
            DataLoading = Enum.Parse<TrainingDataLoading>(Option("--loading") ?? "auto", ignoreCase: true),
            ShufflePoolSize = (int)Long("--pool", new ApdTrainer.Options().ShufflePoolSize),
        };
        ApdTransformer? model = null;
        long rows = 0;
        PeakWorkingSet.Reset();
        var sampler = new PeakWorkingSet.Sampler();
        var clock = Stopwatch.StartNew();
        WithProgress("fitting", epochs, report =>
        {
            options.Progress = new SyncProgress<ApdTrainingProgress>(p =>
            {
                rows = (long)p.NumberOfBatches * options.BatchSize;
                report(p.Epoch - 1 + (double)p.Batch / p.NumberOfBatches, $"epoch {p.Epoch}/{p.NumberOfEpochs}, batch {p.Batch:N0}/{p.NumberOfBatches:N0}, loss {p.Loss:F3}");
            });
            model = ml.MulticlassClassification.Trainers.Apd(options).Fit(data, "large");
        });
        double seconds = clock.Elapsed.TotalSeconds;
        long peak = PeakWorkingSet.Bytes();
        sampler.Dispose();
        AnsiConsole.MarkupLine(Markup.Escape($"Memory {sampler.Summary}."));
        using (model)
        {
            var scored = model!.Transform(ml.Data.LoadFromEnumerable(new AugmentedImages(test, (int)Long("--seed", 1)).Test(test)));
            double accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
            AnsiConsole.MarkupLine($"Fit: ~{rows:N0} rows, {seconds:F1} s ({seconds / epochs:F1} s per epoch, first pass included), " +
                $"peak working set [bold]{peak / 1e6:F0} MB[/]; test accuracy {accuracy:P2}.");
            if (Option("--csv") is { } csv)
            {
                bool header = !File.Exists(csv);
                using var w = File.AppendText(csv);
                if (header) w.WriteLine("rows,loading,pool,epochs,seconds,peak_mb,accuracy,hidden,batch");
                w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{rows},{options.DataLoading},{options.ShufflePoolSize},{epochs},{seconds:F1},{peak / 1e6:F0},{accuracy:F4},{string.Join('-', options.HiddenLayerSizes)},{options.BatchSize}"));
            }
        }
        return 0;
    }
    case "chart":
        MemoryChart.Write(Option("--csv") ?? throw new ArgumentException("chart needs --csv."), Option("--png") ?? "peak-memory.png");
        return 0;
    default:
        Console.WriteLine(Usage);
        return command is "--help" or "-h" ? 0 : 2;
}

static (FashionMnistSet Train, FashionMnistSet Test) LoadFashionMnist(string? data, bool testOnly = false)
{
    string? directory = data switch
    {
        null => Directory.Exists(FashionMnist.DebianDirectory) ? FashionMnist.DebianDirectory : null,
        "subset" => null,
        "full" => FashionMnist.DebianDirectory,
        _ => data,
    };
    if (directory is null) return FashionMnist.LoadSubset();
    var test = FashionMnist.Load(directory, train: false);
    return (testOnly ? test : FashionMnist.Load(directory, train: true), test);
}

static IEnumerable<T> Counted<T>(IEnumerable<T> rows, Action<double, string> report)
{
    long n = 0;
    foreach (var row in rows)
    {
        if (++n % 10_000 == 0) report(n, $"{n:N0} rows");
        yield return row;
    }
}

// A live progress bar, or one line per tenth when the output is redirected.
static void WithProgress(string label, double total, Action<Action<double, string>> work)
{
    if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsOutputRedirected)
    {
        int printed = -1;
        work((value, text) =>
        {
            int tenth = (int)(10 * value / total);
            if (tenth > printed) { printed = tenth; Console.WriteLine($"{label}: {text}"); }
        });
        return;
    }
    AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
        .Start(context =>
        {
            var bar = context.AddTask(Markup.Escape(label), maxValue: total);
            work((value, text) => { bar.Value = value; bar.Description = Markup.Escape($"{label}: {text}"); });
        });
}

/// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
