using System.Globalization;
using Spectre.Console;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>The end-of-run table: one row per method.</summary>
public static class SummaryTable
{
    public static void Write(ExperimentResults results)
    {
        bool orders = results.Summaries.Any(s => s.Opd is not null);
        var table = new Table().Title($"{results.Settings.Scenario} scenario, {results.Settings.TaskCount} tasks").Border(TableBorder.Rounded);
        table.AddColumn("Method");
        foreach (var header in new[] { "Avg acc", "BWT", "Forgetting", "Capacity", "Train s", "Peak MB" })
            table.AddColumn(new TableColumn(header).RightAligned());
        if (orders)
        {
            table.AddColumn(new TableColumn("OPD").RightAligned());
            table.AddColumn(new TableColumn("MOPD").RightAligned());
        }

        foreach (var s in results.Summaries)
        {
            var cells = new List<string>
            {
                s.Method, Percent(s.FinalAverageAccuracy), Percent(s.BackwardTransfer), Percent(s.Forgetting),
                $"{s.Capacity:F2}×", s.TrainingSeconds.ToString("F1", CultureInfo.InvariantCulture), (s.PeakWorkingSetBytes >> 20).ToString(CultureInfo.InvariantCulture),
            };
            if (orders) cells.AddRange([Percent(s.Opd ?? 0), Percent(s.Mopd ?? 0)]);
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]Accuracy figures in percentage points; capacity = stored parameters ÷ one base network (784-"
            + Markup.Escape(string.Join("-", results.Settings.HiddenLayerSizes)) + " + a head per task).[/]");
        foreach (var run in results.Runs.Where(r => r.SavedBytes is { Count: > 0 }).DistinctBy(r => r.Method))
        {
            AnsiConsole.MarkupLine(Markup.Escape(SizeLine(run, results.Settings)));
            AnsiConsole.MarkupLine("[grey]" + Markup.Escape(SizeExpectation) + "[/]");
        }
    }

    /// <summary>What users should expect of APD's size with the library's defaults (docs/benchmarks.md).</summary>
    public const string SizeExpectation = "APD's defaults store no task-adaptive weights for the first task (1.01x with its input model, "
        + "however long it trains); later tasks add a sparse tau and the leading components of a rank-16 change of the first layer: "
        + "~1.12x after 5 short Split tasks (the embedded subset), ~1.09x on --data full, ~1.68x at 86.8 % on 10 unrelated permuted tasks "
        + "(--apd-rank-energy 1 keeps every component: ~1.84x, 87.0 %). --apd-rank 0 turns the low-rank part off; "
        + "--apd-preset paper runs the authors' algorithm (README, \"Size\").";

    /// <summary>What the model's size does as tasks are added: capacity and saved bytes after the first and the last
    /// task, and the growth per task against one network's float32 bytes.</summary>
    public static string SizeLine(MethodRun run, ExperimentSettings settings)
    {
        var bytes = run.SavedBytes!;
        long first = bytes[0] ?? 0, last = bytes[^1] ?? 0;
        int tasks = bytes.Count;
        long networkBytes = 4 * NetworkParameters(settings);
        string growth = tasks > 1
            ? $"; +{(last - first) / (tasks - 1.0) / 1e3:F0} KB per task = {100.0 * (last - first) / (tasks - 1) / networkBytes:F1} % of one network's float32 bytes ({networkBytes / 1e3:F0} KB)"
            : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{run.Method} size: {run.Capacity[0]:F3}× after task 1, {run.Capacity[^1]:F3}× after task {tasks}; saved .zip {first / 1e3:F0} KB after task 1, {last / 1e3:F0} KB after task {tasks}{growth}.");
    }

    /// <summary>Weights and biases of the fully-connected trunk (784 inputs), without heads.</summary>
    private static long NetworkParameters(ExperimentSettings settings)
    {
        long parameters = 0, inputs = FashionMnist.ImageSize;
        foreach (int size in settings.HiddenLayerSizes)
        {
            parameters += inputs * size + size;
            inputs = size;
        }
        return parameters;
    }

    private static string Percent(double fraction) => (100 * fraction).ToString("F2", CultureInfo.InvariantCulture);
}
