using Defaults = Microsoft.ML.Apd.ApdTrainer.Options.Defaults;

namespace Microsoft.ML.Apd.Engine;

/// <summary>Training settings of the APD engine. The hyperparameters are the authors' (Yoon et al., ICLR 2020, public
/// code); the compactness levers default to the measured better trade (docs/benchmarks.md), <see cref="Paper"/> turns
/// them off.</summary>
internal sealed record ApdHyperparameters
{
    /// <summary>The authors' algorithm: τ_1 trained, τ_t from a copy of σ, the subgradient L1 only, random mask
    /// logits, β = 1e-2, float32 storage, no low-rank part, every task following σ forever.</summary>
    public static ApdHyperparameters Paper => new()
    {
        LowRankAdaptiveRank = 0,
        ConsolidationThreshold = 1e-2,
        TrainFirstTaskAdaptive = true,
        AdaptiveStartsAtZero = false,
        ProximalStrength = 0,
        InitialMaskLogit = null,
        HalfPrecisionStorage = false,
        RetroactiveWindow = 0,
    };

    public int NumberOfEpochs { get; init; } = Defaults.NumberOfEpochs;
    public int BatchSize { get; init; } = Defaults.BatchSize;
    public double LearningRate { get; init; } = Defaults.LearningRate;
    /// <summary>How the rate of σ, τ_t, the masks, biases and heads falls over a task (<see cref="LearningRateAt"/>).</summary>
    public LearningRateSchedule LearningRateSchedule { get; init; } = Defaults.LearningRateSchedule;
    /// <summary>Learning rate multiplier per epoch of <see cref="LearningRateSchedule.ExponentialPerEpoch"/>.</summary>
    public double LearningRateDecay { get; init; } = Defaults.LearningRateDecay;
    /// <summary>λ₁: L1 on τ, and the hard threshold |τ| ≤ λ₁ ⇒ 0.</summary>
    public double SparsityStrength { get; init; } = Defaults.SparsityStrength;
    /// <summary>λ₂: weight of the retroactive term.</summary>
    public double RetroactiveStrength { get; init; } = Defaults.RetroactiveStrength;
    /// <summary>λ_m: L1 on the mask logits v_t.</summary>
    public double MaskSparsityStrength { get; init; } = Defaults.MaskSparsityStrength;
    /// <summary>wd: L2 on τ_t, v_t (and σ during the first task).</summary>
    public double WeightDecay { get; init; } = Defaults.WeightDecay;
    /// <summary>Gradients are multiplied by this before the optimizer step (the authors use 10).</summary>
    public double GradientScale { get; init; } = Defaults.GradientScale;
    /// <summary>s: consolidate every s tasks.</summary>
    public int ConsolidationInterval { get; init; } = Defaults.ConsolidationInterval;
    /// <summary>K₀: clusters at the first consolidation.</summary>
    public int InitialClusterCount { get; init; } = Defaults.InitialClusterCount;
    /// <summary>k: clusters added at each later consolidation.</summary>
    public int ClusterCountIncrement { get; init; } = Defaults.ClusterCountIncrement;
    /// <summary>β: an element is shared within a cluster when max − min over its tasks ≤ β.</summary>
    public double ConsolidationThreshold { get; init; } = Defaults.ConsolidationThreshold;
    /// <summary>Whether the first task trains a τ_1 of its own. The authors do; without it σ, the masks and the head carry
    /// task 1 (there is nothing to share yet) and τ_1 = 0 until the retroactive update gives it the elements σ's later
    /// drift needs.</summary>
    public bool TrainFirstTaskAdaptive { get; init; } = Defaults.TrainFirstTaskAdaptive;
    /// <summary>Whether a new task's τ_t starts at zero; the authors start it as a copy of σ.</summary>
    public bool AdaptiveStartsAtZero { get; init; } = Defaults.AdaptiveStartsAtZero;
    /// <summary>ρ: after every optimizer step each trained τ is soft-thresholded, τ ← sign(τ)·max(|τ| − γρ, 0) with γ the
    /// current learning rate, so small elements become exact zeros (0: off, the authors' subgradient L1 only). In the
    /// objective this is an extra (ρ / GradientScale)‖τ‖₁, the strength the closed-form retroactive update uses.</summary>
    public double ProximalStrength { get; init; } = Defaults.ProximalStrength;
    /// <summary>Initial mask logit of a new task, M = sigmoid(v) (null: the authors' random variance scaling, M ≈ 0.5).</summary>
    public double? InitialMaskLogit { get; init; }
    /// <summary>Whether τ and σ̃ are rounded to 16-bit floats when stored, so a saved model needs half the bytes for their
    /// values; the trained network already uses the rounded values, so saving loses nothing.</summary>
    public bool HalfPrecisionStorage { get; init; } = Defaults.HalfPrecisionStorage;
    /// <summary>r: rank of the low-rank adaptive part U_t V_tᵀ of the first layers for every task after the first (0: none).</summary>
    public int LowRankAdaptiveRank { get; init; } = Defaults.LowRankAdaptiveRank;
    /// <summary>The share of ‖U_t V_tᵀ‖_F² the stored part keeps (its leading singular components; 1: all r).</summary>
    public double LowRankKeptEnergy { get; init; } = Defaults.LowRankKeptEnergy;
    /// <summary>How many layers, from the input, have a low-rank part.</summary>
    public int LowRankAdaptiveLayers { get; init; } = Defaults.LowRankAdaptiveLayers;
    /// <summary>U_t and V_t learn at LearningRate × this, falling by <see cref="LowRankLearningRateSchedule"/>.</summary>
    public double LowRankLearningRateMultiplier { get; init; } = Defaults.LowRankLearningRateMultiplier;
    /// <summary>How the rate of U_t and V_t falls over a task (<see cref="LowRankLearningRateAt"/>).</summary>
    public LearningRateSchedule LowRankLearningRateSchedule { get; init; } = Defaults.LowRankLearningRateSchedule;
    /// <summary>L1 strength on the earlier τ_i in the retroactive term: λ₁ plus the proximal shrinking's share.</summary>
    internal double RetroactiveSparsityStrength => SparsityStrength + ProximalStrength / GradientScale;
    public int Seed { get; init; } = 1;
    /// <summary>W: when W tasks follow σ, they are frozen on today's σ (<see cref="ApdNetwork.FreezeFollowingTasks"/>) and
    /// a new window starts, so training a task costs at most W earlier tasks' retroactive update and consolidation
    /// (0: every task follows σ forever, the authors' algorithm).</summary>
    public int RetroactiveWindow { get; init; } = Defaults.RetroactiveWindow;
    /// <summary>Fast by default: it matches Exact's accuracy on Split Fashion-MNIST and ends within 0.02× of its
    /// capacity (docs/benchmarks.md), at a step cost that does not grow with the number of tasks.</summary>
    public RetroactiveUpdateMode RetroactiveUpdate { get; init; } = Defaults.RetroactiveUpdate;

    /// <summary>The learning rate of σ, τ_t, the masks, biases and head at step <paramref name="step"/> (from 0) of epoch
    /// <paramref name="epoch"/> (from 0), for a task of <see cref="NumberOfEpochs"/> epochs of <paramref name="stepsPerEpoch"/> steps.</summary>
    public double LearningRateAt(int epoch, int step, int stepsPerEpoch)
        => LearningRate * Fall(LearningRateSchedule, epoch, step, stepsPerEpoch);

    /// <summary>The learning rate of the low-rank factors U_t, V_t at that step.</summary>
    public double LowRankLearningRateAt(int epoch, int step, int stepsPerEpoch)
        => LearningRate * LowRankLearningRateMultiplier * Fall(LowRankLearningRateSchedule, epoch, step, stepsPerEpoch);

    /// <summary>The share of its starting rate a schedule keeps at a step, in (0, 1].</summary>
    private double Fall(LearningRateSchedule schedule, int epoch, int step, int stepsPerEpoch) => schedule switch
    {
        LearningRateSchedule.ExponentialPerEpoch => Math.Pow(LearningRateDecay, epoch),
        // Never 0: the last step s = S − 1 keeps ½(1 − cos(π/S)).
        _ => 0.5 * (1 + Math.Cos(Math.PI * ((double)epoch * stepsPerEpoch + step) / ((double)NumberOfEpochs * stepsPerEpoch))),
    };
}
