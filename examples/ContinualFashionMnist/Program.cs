using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Apd.Samples.Continual;
using Spectre.Console;

// Continual learning on Fashion-MNIST: APD (through ML.NET) next to fine-tuning, single-task networks and EWC.
if (args is ["charts", var resultsFile, var chartsDirectory])
{
    var saved = ExperimentResults.Load(resultsFile);
    Directory.CreateDirectory(chartsDirectory);
    Charts.SaveAll(saved.Runs.Where(r => r.Order == saved.Runs[0].Order).ToArray(), chartsDirectory);
    Console.WriteLine($"Charts of {resultsFile} in {Path.GetFullPath(chartsDirectory)}.");
    return 0;
}

ExperimentSettings settings;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(CommandLineOptions.Usage);
        return 0;
    }
    settings = CommandLineOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(CommandLineOptions.Usage);
    return 2;
}

TorchSharpLoader.EnsureLoadable(); // the baselines call TorchSharp before any Microsoft.ML.Apd type (README, "Older Linux distributions")
using var data = settings.DataDirectory is null ? FashionMnistTensors.FromSubset() : FashionMnistTensors.FromDirectory(settings.DataDirectory);
AnsiConsole.MarkupLine($"Data: [bold]{Markup.Escape(data.Source)}[/]");
if (settings.DataDirectory is null && Directory.Exists(FashionMnist.DebianDirectory))
    AnsiConsole.MarkupLine($"[grey]The full Fashion-MNIST is installed in {FashionMnist.DebianDirectory}: add --data full for the paper-scale benchmark.[/]");
AnsiConsole.MarkupLine($"Scenario: [bold]{settings.Scenario}[/], {settings.TaskCount} tasks, order {Markup.Escape(settings.Order.Description)}"
    + (settings.OrderCount > 1 ? $" and {settings.OrderCount - 1} random orders" : "")
    + $"; methods {string.Join(", ", settings.Methods)}; {settings.Epochs} epochs, batch {settings.BatchSize}, Adam lr {settings.LearningRate}");

var results = ConsoleProgress.Run(progress => ContinualBenchmark.Run(settings, data, progress));
SummaryTable.Write(results);
AnsiConsole.MarkupLine($"Results, accuracy-matrix.png, capacity.png and average-accuracy.png in [bold]{Markup.Escape(Path.GetFullPath(settings.OutputDirectory))}[/] ({results.TotalSeconds:F0} s in all).");

string model = Path.Combine(settings.OutputDirectory, ContinualBenchmark.ApdModelFile);
if (settings.Methods.Contains(ContinualMethods.Apd))
    ApdScoringDemo.Run(model, Scenario.Create(settings.Scenario, settings.TaskCount, settings.Seed), data);
return 0;
