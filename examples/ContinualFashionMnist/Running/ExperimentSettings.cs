using Microsoft.ML.Apd;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>Everything that defines a run; every method trains with the same architecture and optimizer settings.</summary>
public sealed record ExperimentSettings
{
    public ScenarioKind Scenario { get; init; } = ScenarioKind.Split;
    public int TaskCount { get; init; } = Continual.Scenario.DefaultTaskCount(ScenarioKind.Split);
    public TaskOrder Order { get; init; } = TaskOrder.Canonical(5);
    public int OrderCount { get; init; } = 1;
    public IReadOnlyList<string> Methods { get; init; } = ContinualMethods.All;
    public IReadOnlyList<int> HiddenLayerSizes { get; init; } = [256, 128];
    public int Epochs { get; init; } = 5;
    public int BatchSize { get; init; } = 100;
    public double LearningRate { get; init; } = 1e-3;
    public int Seed { get; init; } = 1;

    /// <summary>EWC's penalty strength λ (the Fisher is a per-sample mean, so λ is independent of the data size).</summary>
    public double EwcLambda { get; init; } = 1000;

    /// <summary>How many training images per task estimate EWC's diagonal Fisher information.</summary>
    public int EwcFisherSamples { get; init; } = 200;

    /// <summary>How APD computes its retroactive term: Exact (the authors' algorithm, cost grows with the tasks) or Fast.</summary>
    public RetroactiveUpdateMode ApdRetroactiveUpdate { get; init; } = new ApdTrainer.Options().RetroactiveUpdate;

    /// <summary>APD's λ₁ (<see cref="ApdTrainer.Options.SparsityStrength"/>).</summary>
    public double ApdSparsityStrength { get; init; } = new ApdTrainer.Options().SparsityStrength;

    /// <summary>APD's starting options: the library's defaults, or the authors' algorithm (<see cref="ApdTrainer.Options.Paper"/>).</summary>
    public ApdPreset ApdPreset { get; init; } = ApdPreset.Default;

    /// <summary>Compactness options over the preset's (null: the preset's value); see <see cref="ApdTrainer.Options"/>.</summary>
    public bool? ApdTrainFirstTaskAdaptive { get; init; }
    public bool? ApdAdaptiveStartsAtZero { get; init; }
    public double? ApdProximalStrength { get; init; }
    /// <summary>A mask logit, or NaN for the random initialisation.</summary>
    public double? ApdInitialMaskLogit { get; init; }
    public bool? ApdHalfPrecisionStorage { get; init; }
    /// <summary>APD's LowRankAdaptiveRank (null: the preset's).</summary>
    public int? ApdLowRankRank { get; init; }
    /// <summary>APD's LowRankKeptEnergy (null: the preset's).</summary>
    public double? ApdLowRankKeptEnergy { get; init; }
    /// <summary>APD's LowRankAdaptiveLayers (null: the preset's).</summary>
    public int? ApdLowRankLayers { get; init; }
    /// <summary>APD's LowRankLearningRateMultiplier (null: the preset's).</summary>
    public double? ApdLowRankLearningRateMultiplier { get; init; }
    /// <summary>APD's LowRankLearningRateSchedule (null: the preset's).</summary>
    public LearningRateSchedule? ApdLowRankLearningRateSchedule { get; init; }
    /// <summary>APD's LearningRateSchedule (null: the preset's).</summary>
    public LearningRateSchedule? ApdLearningRateSchedule { get; init; }
    /// <summary>APD's LearningRateDecay (null: the preset's).</summary>
    public double? ApdLearningRateDecay { get; init; }

    /// <summary>Data directory with the full idx .gz files; null for the embedded subset.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>At most this many training (test) images per task; null for all. For quick runs and tests.</summary>
    public int? TrainLimit { get; init; }
    public int? TestLimit { get; init; }

    public string OutputDirectory { get; init; } = "apd-results";
}

/// <summary>Where APD's options start from.</summary>
public enum ApdPreset
{
    /// <summary><c>new ApdTrainer.Options()</c>.</summary>
    Default,
    /// <summary><see cref="ApdTrainer.Options.Paper"/>.</summary>
    Paper,
}
