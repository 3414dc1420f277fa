using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Benchmarks;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;

// dotnet run -c Release --project benchmarks/Apd.Benchmarks -- <split|steps|profile|api|inference|scale|onnx|all> [--data DIR] [--out DIR]
//   onnx: [--tasks 50] [--api-epochs 5] [--api-images 12000] (the api benchmark's model; sizes and ORT vs Transform at 10 and the last task)
//   inference: [--parts permuted,split,speed] [--epochs 5] [--train-images N] [--test-images N] (per task)
//   scale: [--tasks 1000] [--images 300] [--epochs 1] [--interval s] [--window W] [--every 10] [--minutes M] (issue #17: many short tasks; --window 0: no retroactive window; --minutes ends training early)
//   split: [--mode exact,fast] [--epochs 5]   steps: [--architectures mlp,conv] [--last-task 50]   api: [--tasks 50] [--api-epochs 5] [--api-images 12000]
string command = args.Length > 0 ? args[0] : "all";
if (command == "scale-chart")
{
    // Redraws scale-*.png from a scale.csv written by "scale".
    ScaleBenchmark.Charts.Write(args[1], Path.GetDirectoryName(Path.GetFullPath(args[1]))!);
    return 0;
}
if (command == "chart")
{
    // Redraws stored-size.png from a stored-size.csv written by "api".
    StoredSizeChart.Write(args[1], Path.ChangeExtension(args[1], ".png"));
    return 0;
}
string? dataDirectory = Option("--data") ?? (Directory.Exists(FashionMnist.DebianDirectory) ? FashionMnist.DebianDirectory : null);
string outDirectory = Option("--out") ?? "benchmark-results";
int epochs = int.Parse(Option("--epochs") ?? "5");
Directory.CreateDirectory(outDirectory);
TorchSharpLoader.EnsureLoadable(); // before the first TorchSharp call (README, "Older Linux distributions")
// Both cores unless OMP_NUM_THREADS says otherwise (on a shared machine, set it to 1: see DEVELOPERS).
if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null) TorchSharp.torch.set_num_threads(Environment.ProcessorCount);

var (train, test) = dataDirectory is null ? FashionMnist.LoadSubset() : (FashionMnist.Load(dataDirectory, true), FashionMnist.Load(dataDirectory, false));
Console.WriteLine($"data: {(dataDirectory ?? "shipped subset")}; {Environment.ProcessorCount} cores; {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");

if (command is "split" or "all")
    foreach (var mode in (Option("--mode") ?? "exact,fast").Split(','))
        SplitFashionMnistEngine.Run(train, test, Enum.Parse<RetroactiveUpdateMode>(mode, ignoreCase: true), epochs, Console.Out);
if (command is "profile")
    StepProfile.Run(train, Console.Out);
if (command is "steps" or "all")
    StepTimes.Run(train, Option("--architectures") ?? "mlp,conv", int.Parse(Option("--last-task") ?? "50"), Console.Out);
if (command is "inference")
    TaskInferenceBenchmark.Run(train, test, epochs, Option("--parts") ?? "permuted,split,speed",
        Option("--train-images") is { } n ? int.Parse(n) : null, Option("--test-images") is { } m ? int.Parse(m) : null, Console.Out);
if (command is "scale")
    ScaleBenchmark.Run(train, test, int.Parse(Option("--tasks") ?? "1000"), int.Parse(Option("--images") ?? "300"),
        int.Parse(Option("--epochs") ?? "1"), Option("--interval") is { } s ? int.Parse(s) : null,
        int.Parse(Option("--every") ?? "10"), outDirectory, Console.Out, Option("--minutes") is { } m ? double.Parse(m, System.Globalization.CultureInfo.InvariantCulture) : null,
        Option("--window") is { } w ? int.Parse(w) : null);
if (command is "onnx" or "all")
{
    int images = int.Parse(Option("--api-images") ?? "12000");
    var taskData = new FashionMnistSet(train.Images.Take(images).ToArray(), train.Labels.Take(images).ToArray());
    OnnxExport.Run(taskData, test, int.Parse(Option("--tasks") ?? "50"), int.Parse(Option("--api-epochs") ?? "5"), Console.Out);
}
if (command is "api" or "all")
{
    // Each permuted task: the first --api-images training images (default 12,000, the size of a Split task; 60000 for
    // the whole training set per task, 5× longer).
    int images = int.Parse(Option("--api-images") ?? "12000");
    var taskData = new FashionMnistSet(train.Images.Take(images).ToArray(), train.Labels.Take(images).ToArray());
    PublicApi.Run(taskData, test, int.Parse(Option("--tasks") ?? "50"), int.Parse(Option("--api-epochs") ?? "5"), outDirectory, Console.Out);
}
return 0;

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
