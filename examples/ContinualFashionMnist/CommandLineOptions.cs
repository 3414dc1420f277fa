using System.Globalization;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>Turns the command line into <see cref="ExperimentSettings"/>.</summary>
public static class CommandLineOptions
{
    public const string Usage = """
        Continual learning on Fashion-MNIST: APD and baselines, side by side.

        Usage: dotnet run --project examples/ContinualFashionMnist -- [options]

          --scenario split|permuted|rotated  split: 5 tasks of 2 classes; permuted/rotated: all 10 classes per task (default split)
          --tasks N                          number of tasks (split: up to 5; permuted/rotated: default 10, up to 100+)
          --order LIST|SEED                  task order: "3,1,2,5,4" (task numbers) or a seed for a random order (default canonical)
          --orders K                         repeat over K task orders (the first is --order) and report OPD/MOPD (default 1)
          --methods LIST                     any of apd,finetune,stl,ewc (default all)
          --data DIR|full|subset             full idx .gz data in DIR; "full" = /usr/share/datasets/fashion-mnist;
                                             "subset" = embedded 500/100 images per class (default subset)
          --epochs N --batch-size N --lr X --seed N --hidden 256,128
          --ewc-lambda X --ewc-samples N     EWC penalty strength (default 1000) and Fisher sample count (default 200)
          --apd-retroactive exact|fast       APD's retroactive update: the library's default (fast) or the dense exact reference
          --apd-sparsity λ₁                  APD's SparsityStrength (default 4e-4): larger = sparser τ, smaller model
          --apd-preset default|paper         APD's options: the library's defaults or the authors' algorithm (Options.Paper())
          --apd-first-task-adaptive B        compactness options over the preset (B = true|false): train τ on task 1,
          --apd-zero-start B                 start τ_t at zero,
          --apd-prox ρ                       proximal shrinking strength (0 = off),
          --apd-mask-logit v|random          initial mask logit,
          --apd-half B                       store τ in half precision,
          --apd-rank r                       rank of the low-rank adaptive part U_t V_tᵀ (0 = none),
          --apd-rank-layers N                how many layers from the input get it (default 1),
          --apd-rank-energy X                share of ‖U_t V_tᵀ‖² a task stores (its leading components; default 0.997, 1 = all),
          --apd-rank-lr X                    learning-rate multiplier of U_t, V_t,
          --apd-rank-lr-schedule S           how their rate falls over a task: cosine or exponentialperepoch,
          --apd-lr-schedule S                the same for every other parameter,
          --apd-lr-decay X                   the multiplier per epoch of exponentialperepoch
          --train-limit N --test-limit N     use at most N images per task (quick runs)
          --out DIR                          output directory (default ./apd-results)

        Redraw the charts of an earlier run (no training): dotnet run --project examples/ContinualFashionMnist -- charts RESULTS.json DIR
        """;

    public static ExperimentSettings Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Count)
                throw new ArgumentException($"Expected --option value, got '{args[i]}'.");
            values[args[i][2..]] = args[++i];
        }

        string? Take(string name) => values.Remove(name, out var value) ? value : null;
        int? Int(string name) => Take(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : null;
        double? Double(string name) => Take(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : null;
        bool? Bool(string name) => Take(name) is { } v ? bool.Parse(v) : null;

        var defaults = new ExperimentSettings();
        var scenario = Take("scenario") is { } s ? Enum.Parse<ScenarioKind>(s, ignoreCase: true) : defaults.Scenario;
        int tasks = Int("tasks") ?? Scenario.DefaultTaskCount(scenario);
        string data = Take("data") ?? "subset";
        var settings = defaults with
        {
            Scenario = scenario,
            TaskCount = tasks,
            Order = TaskOrder.Parse(Take("order"), tasks),
            OrderCount = Int("orders") ?? defaults.OrderCount,
            Methods = Take("methods") is { } m ? m.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : defaults.Methods,
            Epochs = Int("epochs") ?? defaults.Epochs,
            BatchSize = Int("batch-size") ?? defaults.BatchSize,
            LearningRate = Double("lr") ?? defaults.LearningRate,
            Seed = Int("seed") ?? defaults.Seed,
            HiddenLayerSizes = Take("hidden") is { } h ? h.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray() : defaults.HiddenLayerSizes,
            EwcLambda = Double("ewc-lambda") ?? defaults.EwcLambda,
            EwcFisherSamples = Int("ewc-samples") ?? defaults.EwcFisherSamples,
            ApdRetroactiveUpdate = Take("apd-retroactive") is { } r ? Enum.Parse<RetroactiveUpdateMode>(r, ignoreCase: true) : defaults.ApdRetroactiveUpdate,
            ApdSparsityStrength = Double("apd-sparsity") ?? defaults.ApdSparsityStrength,
            ApdPreset = Take("apd-preset") is { } p ? Enum.Parse<ApdPreset>(p, ignoreCase: true) : defaults.ApdPreset,
            ApdTrainFirstTaskAdaptive = Bool("apd-first-task-adaptive"),
            ApdAdaptiveStartsAtZero = Bool("apd-zero-start"),
            ApdProximalStrength = Double("apd-prox"),
            ApdInitialMaskLogit = Take("apd-mask-logit") is { } v ? (v == "random" ? double.NaN : double.Parse(v, CultureInfo.InvariantCulture)) : null,
            ApdHalfPrecisionStorage = Bool("apd-half"),
            ApdLowRankRank = Int("apd-rank"),
            ApdLowRankLayers = Int("apd-rank-layers"),
            ApdLowRankKeptEnergy = Double("apd-rank-energy"),
            ApdLowRankLearningRateMultiplier = Double("apd-rank-lr"),
            ApdLowRankLearningRateSchedule = Take("apd-rank-lr-schedule") is { } rs ? Enum.Parse<LearningRateSchedule>(rs, ignoreCase: true) : null,
            ApdLearningRateSchedule = Take("apd-lr-schedule") is { } ls ? Enum.Parse<LearningRateSchedule>(ls, ignoreCase: true) : null,
            ApdLearningRateDecay = Double("apd-lr-decay"),
            DataDirectory = data switch { "subset" => null, "full" => FashionMnist.DebianDirectory, _ => data },
            TrainLimit = Int("train-limit"),
            TestLimit = Int("test-limit"),
            OutputDirectory = Take("out") ?? defaults.OutputDirectory,
        };

        if (values.Count > 0) throw new ArgumentException($"Unknown option --{values.Keys.First()}.");
        foreach (var method in settings.Methods)
            if (!ContinualMethods.All.Contains(method)) throw new ArgumentException($"Unknown method '{method}'; choose from {string.Join(",", ContinualMethods.All)}.");
        if (settings.OrderCount < 1) throw new ArgumentException("--orders must be at least 1.");
        _ = Scenario.Create(scenario, tasks, settings.Seed); // validates --tasks for the scenario
        return settings;
    }
}
