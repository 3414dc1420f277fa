using Microsoft.ML.Apd.Engine;

namespace Microsoft.ML.Apd;

public sealed partial class ApdTrainer
{
    /// <summary>
    /// Options of <see cref="ApdTrainer"/>. Symbols are those of Yoon et al., "Scalable and Order-robust Continual
    /// Learning with Additive Parameter Decomposition" (ICLR 2020); defaults are the authors'. Options are checked when
    /// the trainer is created (<see cref="ArgumentOutOfRangeException"/> or <see cref="ArgumentException"/> naming the
    /// option), before any training.
    /// </summary>
    public sealed class Options
    {
        /// <summary>
        /// The default of every option, in one place: the options' initial values, the engine's settings and the
        /// catalog overload's parameters all read them (as ML.NET's trainers' <c>Options.Defaults</c>).
        /// </summary>
        public static class Defaults
        {
            /// <summary>Default <see cref="Options.LabelColumnName"/>.</summary>
            public const string LabelColumnName = "Label";
            /// <summary>Default <see cref="Options.FeatureColumnName"/>.</summary>
            public const string FeatureColumnName = "Features";
            /// <summary>Default <see cref="Options.TaskIdColumnName"/>.</summary>
            public const string TaskIdColumnName = "TaskId";
            /// <summary>Default <see cref="Options.TaskId"/>.</summary>
            public const string TaskId = "default";
            /// <summary>Default <see cref="Options.ScoreColumnName"/>.</summary>
            public const string ScoreColumnName = "Score";
            /// <summary>Default <see cref="Options.PredictedLabelColumnName"/>.</summary>
            public const string PredictedLabelColumnName = "PredictedLabel";
            /// <summary>Default <see cref="Options.PredictedTaskColumnName"/>.</summary>
            public const string PredictedTaskColumnName = "PredictedTask";
            /// <summary>Default <see cref="Options.TaskConfidenceColumnName"/>.</summary>
            public const string TaskConfidenceColumnName = "TaskConfidence";
            /// <summary>Default <see cref="Options.HiddenLayerSizes"/> (a new array each time): { 256, 128 }.</summary>
            public static int[] HiddenLayerSizes => [256, 128];
            /// <summary>Default <see cref="Options.ConvolutionKernelSize"/>.</summary>
            public const int ConvolutionKernelSize = 5;
            /// <summary>Default <see cref="Options.NumberOfEpochs"/>.</summary>
            public const int NumberOfEpochs = 5;
            /// <summary>Default <see cref="Options.BatchSize"/>.</summary>
            public const int BatchSize = 100;
            /// <summary>Default <see cref="Options.LearningRate"/>.</summary>
            public const double LearningRate = 1e-3;
            /// <summary>Default <see cref="Options.LearningRateSchedule"/> (the authors').</summary>
            public const LearningRateSchedule LearningRateSchedule = Apd.LearningRateSchedule.ExponentialPerEpoch;
            /// <summary>Default <see cref="Options.LearningRateDecay"/>.</summary>
            public const double LearningRateDecay = 0.95;
            /// <summary>Default <see cref="Options.SparsityStrength"/> (λ₁).</summary>
            public const double SparsityStrength = 4e-4;
            /// <summary>Default <see cref="Options.RetroactiveStrength"/> (λ₂).</summary>
            public const double RetroactiveStrength = 100;
            /// <summary>Default <see cref="Options.MaskSparsityStrength"/> (λ_m).</summary>
            public const double MaskSparsityStrength = 0;
            /// <summary>Default <see cref="Options.WeightDecay"/>.</summary>
            public const double WeightDecay = 1e-4;
            /// <summary>Default <see cref="Options.GradientScale"/>.</summary>
            public const double GradientScale = 10;
            /// <summary>Default <see cref="Options.ConsolidationInterval"/> (s).</summary>
            public const int ConsolidationInterval = 5;
            /// <summary>Default <see cref="Options.InitialClusterCount"/> (K₀).</summary>
            public const int InitialClusterCount = 2;
            /// <summary>Default <see cref="Options.ClusterCountIncrement"/> (k).</summary>
            public const int ClusterCountIncrement = 2;
            /// <summary>Default <see cref="Options.ConsolidationThreshold"/> (β): 3e-3, the authors' 1e-2 moved every merged
            /// task's weights by up to 5e-3 and cost earlier tasks 0.4 points on short tasks (docs/benchmarks.md, "β").</summary>
            public const double ConsolidationThreshold = 3e-3;
            /// <summary>Default <see cref="Options.RetroactiveUpdate"/>.</summary>
            public const RetroactiveUpdateMode RetroactiveUpdate = RetroactiveUpdateMode.Fast;
            /// <summary>Default <see cref="Options.RetroactiveWindow"/> (W; the authors: 0, no window).</summary>
            public const int RetroactiveWindow = 100;
            /// <summary>Default <see cref="Options.TrainFirstTaskAdaptive"/> (the authors: true).</summary>
            public const bool TrainFirstTaskAdaptive = false;
            /// <summary>Default <see cref="Options.AdaptiveStartsAtZero"/> (the authors: false).</summary>
            public const bool AdaptiveStartsAtZero = true;
            /// <summary>Default <see cref="Options.ProximalStrength"/> (ρ; the authors: 0).</summary>
            public const double ProximalStrength = 0.12;
            /// <summary>Default <see cref="Options.HalfPrecisionStorage"/> (the authors: false).</summary>
            public const bool HalfPrecisionStorage = true;
            /// <summary>Default <see cref="Options.LowRankAdaptiveRank"/> (the authors: 0, none).</summary>
            public const int LowRankAdaptiveRank = 16;
            /// <summary>Default <see cref="Options.LowRankKeptEnergy"/>.</summary>
            public const double LowRankKeptEnergy = 0.997;
            /// <summary>Default <see cref="Options.LowRankAdaptiveLayers"/>.</summary>
            public const int LowRankAdaptiveLayers = 1;
            /// <summary>Default <see cref="Options.LowRankLearningRateMultiplier"/>.</summary>
            public const double LowRankLearningRateMultiplier = 10;
            /// <summary>Default <see cref="Options.LowRankLearningRateSchedule"/>.</summary>
            public const LearningRateSchedule LowRankLearningRateSchedule = Apd.LearningRateSchedule.Cosine;
            /// <summary>Default <see cref="Options.DataLoading"/>.</summary>
            public const TrainingDataLoading DataLoading = TrainingDataLoading.Auto;
            /// <summary>Default <see cref="Options.InMemoryLimitMegabytes"/>.</summary>
            public const int InMemoryLimitMegabytes = 1024;
            /// <summary>Default <see cref="Options.ShufflePoolSize"/>.</summary>
            public const int ShufflePoolSize = 50_000;
            /// <summary>Default <see cref="Options.ScoringCacheMegabytes"/>.</summary>
            public const int ScoringCacheMegabytes = 256;
        }

        /// <summary>The label column (default <c>"Label"</c>): key, text, boolean, or a numeric type.
        /// Each task has its own label set: the distinct values of its rows, sorted ascending.</summary>
        public string LabelColumnName = Defaults.LabelColumnName;

        /// <summary>The feature column (default <c>"Features"</c>): a known-size vector of <see cref="float"/>.</summary>
        public string FeatureColumnName = Defaults.FeatureColumnName;

        /// <summary>
        /// The text column naming each row's task (default <c>"TaskId"</c>). When training data has it, every distinct
        /// value becomes one task, trained in order of first appearance. When it is absent, all rows form one task
        /// named <see cref="TaskId"/>. At prediction time each row is routed to its task's head.
        /// </summary>
        public string TaskIdColumnName = Defaults.TaskIdColumnName;

        /// <summary>Task name used when the data has no <see cref="TaskIdColumnName"/> column (default <c>"default"</c>).</summary>
        public string TaskId = Defaults.TaskId;

        /// <summary>The output column of the row's task's class probabilities (default <c>"Score"</c>).</summary>
        public string ScoreColumnName = Defaults.ScoreColumnName;

        /// <summary>The output column of the predicted label, in the training label's type (default <c>"PredictedLabel"</c>).</summary>
        public string PredictedLabelColumnName = Defaults.PredictedLabelColumnName;

        /// <summary>The output column naming the task that scored the row (text, default <c>"PredictedTask"</c>): the
        /// row's own task id when it has one, else the inferred task. Absent with fixed routing
        /// (<see cref="ApdTransformer.ForTask"/>, or a one-task model) and when <see cref="RequireTaskId"/> is set.</summary>
        public string PredictedTaskColumnName = Defaults.PredictedTaskColumnName;

        /// <summary>The output column beside <see cref="PredictedTaskColumnName"/> (Single, default
        /// <c>"TaskConfidence"</c>): the inferred task's probability when all tasks' logits are read as one softmax over
        /// (task, class) pairs, or 1 when the row named its task.</summary>
        public string TaskConfidenceColumnName = Defaults.TaskConfidenceColumnName;

        /// <summary>
        /// When true, scoring a multi-task model requires the task id column and a known task id in every row (an
        /// <see cref="ArgumentOutOfRangeException"/> without the column, an <see cref="InvalidOperationException"/> for an
        /// empty id), as before task inference existed. Default false: a row without a task id gets its task inferred.
        /// </summary>
        public bool RequireTaskId;

        /// <summary>Sizes of the fully-connected hidden layers (ReLU), default <c>{ 256, 128 }</c>. Must not be empty.</summary>
        public int[] HiddenLayerSizes = Defaults.HiddenLayerSizes;

        /// <summary>
        /// Output channels of optional convolution blocks before the fully-connected layers (each: convolution with
        /// <see cref="ConvolutionKernelSize"/>, stride 1, no padding, ReLU, 2×2 max-pooling). Null or empty: none.
        /// Requires <see cref="ImageShape"/>.
        /// </summary>
        public int[]? ConvolutionLayers;

        /// <summary>Kernel size of the convolution blocks (default 5).</summary>
        public int ConvolutionKernelSize = Defaults.ConvolutionKernelSize;

        /// <summary>
        /// Layout of the feature vector as an image (row-major channels·height·width), needed for
        /// <see cref="ConvolutionLayers"/>; the feature vector's size must equal C·H·W.
        /// </summary>
        public (int Channels, int Height, int Width)? ImageShape;

        /// <summary>Epochs per task (default 5).</summary>
        public int NumberOfEpochs = Defaults.NumberOfEpochs;

        /// <summary>Mini-batch size (default 100).</summary>
        public int BatchSize = Defaults.BatchSize;

        /// <summary>Adam learning rate (default 1e-3).</summary>
        public double LearningRate = Defaults.LearningRate;

        /// <summary>How the learning rate of σ, τ, the masks, biases and heads falls over a task's steps (default
        /// <see cref="LearningRateSchedule.ExponentialPerEpoch"/> with <see cref="LearningRateDecay"/>, the authors').
        /// <see cref="LearningRateSchedule.Cosine"/> ends each task near a zero rate, whatever the number of epochs: on
        /// long tasks more accuracy in a smaller model, on short ones (50 steps) less accuracy (README "Size",
        /// docs/benchmarks.md). The low-rank factors have their own, <see cref="LowRankLearningRateSchedule"/>.</summary>
        public LearningRateSchedule LearningRateSchedule = Defaults.LearningRateSchedule;

        /// <summary>Learning rate multiplier applied after every epoch with <see cref="LearningRateSchedule.ExponentialPerEpoch"/>,
        /// in (0, 1] (default 0.95).</summary>
        public double LearningRateDecay = Defaults.LearningRateDecay;

        /// <summary>λ₁: L1 strength on the task-adaptive parameters τ_t, and their hard threshold |τ| ≤ λ₁ ⇒ 0 (default 4e-4).</summary>
        public double SparsityStrength = Defaults.SparsityStrength;

        /// <summary>λ₂: weight of the retroactive term Σ_{i&lt;t} ‖σ ⊙ M_i + τ_i − θ_i*‖² that keeps earlier tasks (default 100).</summary>
        public double RetroactiveStrength = Defaults.RetroactiveStrength;

        /// <summary>λ_m: L1 strength on the mask logits v_t (default 0).</summary>
        public double MaskSparsityStrength = Defaults.MaskSparsityStrength;

        /// <summary>wd: L2 on τ_t and v_t (and σ during the first task) (default 1e-4).</summary>
        public double WeightDecay = Defaults.WeightDecay;

        /// <summary>Gradients are multiplied by this before each optimizer step (default 10, as the authors).</summary>
        public double GradientScale = Defaults.GradientScale;

        /// <summary>s: hierarchical knowledge consolidation runs after every s tasks (default 5, at least 1).</summary>
        public int ConsolidationInterval = Defaults.ConsolidationInterval;

        /// <summary>K₀: number of task clusters at the first consolidation (default 2).</summary>
        public int InitialClusterCount = Defaults.InitialClusterCount;

        /// <summary>k: clusters added at each later consolidation (default 2).</summary>
        public int ClusterCountIncrement = Defaults.ClusterCountIncrement;

        /// <summary>β: an element becomes locally shared within a cluster when max − min of its τ over the cluster's tasks ≤ β
        /// (default 3e-3; the authors: 1e-2). Each member's weight there moves by up to β/2: larger = smaller model and
        /// more forgetting at every consolidation.</summary>
        public double ConsolidationThreshold = Defaults.ConsolidationThreshold;

        /// <summary>How the retroactive term is computed: <see cref="RetroactiveUpdateMode.Fast"/> (default: a step costs
        /// the same whatever the number of tasks, and earlier τ_i are solved in closed form on their sparse support after
        /// each epoch; on Split Fashion-MNIST it ends with the dense reference's accuracy, within 0.02× of its capacity) or
        /// <see cref="RetroactiveUpdateMode.Exact"/> (the authors' dense algorithm, step cost growing with every task).</summary>
        public RetroactiveUpdateMode RetroactiveUpdate = Defaults.RetroactiveUpdate;

        /// <summary>
        /// W: how many tasks at most follow the shared weights σ (default 100; 0: all of them, the authors' algorithm).
        /// While task t trains, every following task's τ_i is updated so that its weights stay where they were as σ
        /// moves (the retroactive update), and every s tasks consolidation clusters the following tasks: both cost time
        /// in proportion to those tasks. When W tasks follow σ, they stop following it: they keep a snapshot of σ
        /// (a handle, no copy; one network's weights per W tasks in a saved model), their predictions never change
        /// again, and later tasks start a new window. So training a task costs the same at task 1,000 as at task 200
        /// (docs/benchmarks.md, "A thousand tasks"), and below W tasks nothing changes. Smaller = faster training, a
        /// larger model (a snapshot of σ per window, and fewer tasks per consolidation): on 1,000 short tasks W = 50
        /// trained 1.6× faster with a flat per-task time, for 10 % more bytes than the default.
        /// </summary>
        public int RetroactiveWindow = Defaults.RetroactiveWindow;

        // Compactness (beyond the paper): how much of each task is stored. Defaults measured in docs/benchmarks.md;
        // Paper() turns every lever off. See README "Size".

        /// <summary>Whether the first task trains task-adaptive parameters τ_1 of its own (default false; the authors:
        /// true). When false, σ, the masks and the head carry task 1 — there is nothing to share yet — so a model of one
        /// task is the size of one network, however long it trained; τ_1 gets only the elements the retroactive update
        /// needs later.</summary>
        public bool TrainFirstTaskAdaptive = Defaults.TrainFirstTaskAdaptive;

        /// <summary>Whether a new task's τ_t starts at zero (default true; the authors start it as a copy of σ, which
        /// the L1 term needs thousands of steps to make sparse).</summary>
        public bool AdaptiveStartsAtZero = Defaults.AdaptiveStartsAtZero;

        /// <summary>ρ: proximal shrinking of τ (default 0.12; the authors: 0). After every optimizer step each trained
        /// τ is soft-thresholded, τ ← sign(τ)·max(|τ| − γρ, 0) with γ the current learning rate, so elements that do not
        /// earn their place are exact zeros after any number of steps. Larger = smaller model and, on tasks that share
        /// little, less accuracy (0.4: Split 1.03× instead of 1.04× for 0.08 points); from about 0.8 (at learning rate
        /// 1e-3) τ can hardly grow.</summary>
        public double ProximalStrength = Defaults.ProximalStrength;

        /// <summary>Initial mask logit v of a new task, M = sigmoid(v) (default null: the authors' random
        /// initialisation, M ≈ 0.5; e.g. 3 starts each task from 0.95·σ).</summary>
        public double? InitialMaskLogit;

        /// <summary>Whether τ and σ̃ are rounded to 16-bit floats when a task is stored (default true; the authors:
        /// false). A saved model needs 2 bytes instead of 4 per stored τ value; the model <c>Fit</c> returns already
        /// uses the rounded values, so saving and loading it changes no prediction.</summary>
        public bool HalfPrecisionStorage = Defaults.HalfPrecisionStorage;

        /// <summary>r: rank of a low-rank adaptive part U_t V_tᵀ (U_t: out × r, V_t: inputs × r) that every task after the
        /// first adds to its first layer's weights, θ_t = σ ⊙ M_t + τ_t + U_t V_tᵀ (default 16; 0: none, as the authors;
        /// capped at the layer's own rank). A task whose inputs relate to the earlier tasks' by a dense map (a new sensor
        /// layout, permuted or re-encoded features) needs a dense change of the first layer, which the sparse τ_t buys
        /// only at many stored elements; a task that needs a small change makes it in one or two directions instead of
        /// many τ elements. Each task stores the leading components that keep <see cref="LowRankKeptEnergy"/> of its
        /// U_t V_tᵀ: on Fashion-MNIST 1–2 of 16 for Split tasks, 7–9 for permuted ones (r·(inputs + outputs) parameters
        /// for r components: 1,040 per component on the default 784-256 first layer). Measured in README "Size" and
        /// docs/benchmarks.md. Frozen once the task is learned.</summary>
        public int LowRankAdaptiveRank = Defaults.LowRankAdaptiveRank;

        /// <summary>The share of ‖U_t V_tᵀ‖_F² a task stores (default 0.997; 1: all r components as trained): when a task
        /// is learned its U_t V_tᵀ is reduced to its fewest leading singular components that keep at least this share,
        /// so a task that needed a one- or two-dimensional change stores that many components, not r. Larger = larger
        /// model and, on unrelated tasks, more accuracy (10 permuted tasks: 0.99 → 86.5 % at 1.64×, 0.997 → 86.7 % at 1.68×,
        /// 1 → 87.0 % at 1.84×). In (0, 1].</summary>
        public double LowRankKeptEnergy = Defaults.LowRankKeptEnergy;

        /// <summary>How many layers, counted from the input, get a low-rank part when <see cref="LowRankAdaptiveRank"/> &gt; 0
        /// (default 1: the first layer only; at most the number of convolution and hidden layers).</summary>
        public int LowRankAdaptiveLayers = Defaults.LowRankAdaptiveLayers;

        /// <summary>U_t and V_t learn at <see cref="LearningRate"/> × this (default 10): they start from a zero product and
        /// need a larger step than the other parameters to reach their change within a task (on 10 permuted tasks at
        /// rank 16, full data: × 3 and × 10 gave the same accuracy, × 30 a point less; a prototype at × 1 learned too slowly;
        /// docs/benchmarks.md).</summary>
        public double LowRankLearningRateMultiplier = Defaults.LowRankLearningRateMultiplier;

        /// <summary>How the learning rate of U_t and V_t falls over a task's steps (default
        /// <see cref="LearningRateSchedule.Cosine"/>: from <see cref="LearningRate"/> × <see cref="LowRankLearningRateMultiplier"/>
        /// to near 0 at the task's last step). At their large rate the factors would end a task a large step away from
        /// where they settle; annealing them gave 10 permuted tasks a point more in a smaller model (86.5 % at 1.64×
        /// instead of 85.5 % at 1.70×, keeping 99 % of each change), and short tasks lose nothing (docs/benchmarks.md).</summary>
        public LearningRateSchedule LowRankLearningRateSchedule = Defaults.LowRankLearningRateSchedule;

        /// <summary>The authors' algorithm and hyperparameters (Yoon et al., ICLR 2020, public code): τ_1 trained, τ_t
        /// starting as a copy of σ, the subgradient L1 only, random mask logits, β = 1e-2, float32 storage, no retroactive
        /// window. The benchmarks'
        /// "paper" rows use it; results compare with the paper's and the reference PyTorch port's.</summary>
        public static Options Paper()
        {
            var paper = ApdHyperparameters.Paper;
            return new()
            {
                TrainFirstTaskAdaptive = paper.TrainFirstTaskAdaptive,
                AdaptiveStartsAtZero = paper.AdaptiveStartsAtZero,
                ProximalStrength = paper.ProximalStrength,
                InitialMaskLogit = paper.InitialMaskLogit,
                ConsolidationThreshold = paper.ConsolidationThreshold,
                HalfPrecisionStorage = paper.HalfPrecisionStorage,
                LowRankAdaptiveRank = paper.LowRankAdaptiveRank,
                RetroactiveWindow = paper.RetroactiveWindow,
            };
        }

        /// <summary>Seed for initialisation and mini-batch order. Default: the MLContext's seed when it has one, else random.</summary>
        public int? Seed;

        /// <summary>Receives <see cref="ApdTrainingProgress"/> after every mini-batch, synchronously on the training thread.</summary>
        public IProgress<ApdTrainingProgress>? Progress;

        /// <summary>
        /// How a task's rows are read while training (default <see cref="TrainingDataLoading.Auto"/>): in memory when
        /// the task's features take at most <see cref="InMemoryLimitMegabytes"/>, otherwise streamed from the
        /// <see cref="IDataView"/> every epoch (a file loaded with <c>LoadFromBinary</c> or <c>LoadFromTextFile</c> is then
        /// never held in memory). Either way a first pass counts each task's rows and collects its labels without keeping rows.
        /// </summary>
        public TrainingDataLoading DataLoading = Defaults.DataLoading;

        /// <summary>
        /// With <see cref="TrainingDataLoading.Auto"/>, the largest task held in memory, in megabytes of float32 features
        /// (rows × features × 4 bytes; default 1024). Larger tasks are streamed.
        /// </summary>
        public int InMemoryLimitMegabytes = Defaults.InMemoryLimitMegabytes;

        /// <summary>
        /// Rows in the shuffle pool of a streamed task (default 50,000; 150 MB at 784 features). A task no larger than
        /// the pool is shuffled in full every epoch, exactly as in memory. A larger one is read in the data view's own
        /// shuffled order when it can shuffle (ML.NET's binary <c>.idv</c> loader reads its blocks in random order) and
        /// each row is drawn at random from the pool, as ML.NET's <c>ShuffleRows</c> does; a larger pool mixes further.
        /// </summary>
        public int ShufflePoolSize = Defaults.ShufflePoolSize;

        /// <summary>
        /// Memory for the weights scoring derives per task (default 256 MB; 0 keeps none). Scoring a task composes its
        /// weights θ = σ ⊙ M + σ̃ + τ once (about 1.9 MB for the default 784-256-128 network, as tensors for batches and
        /// as arrays for single rows) and keeps them for the next rows of that task; beyond this budget the least
        /// recently used tasks' weights are dropped and composed again when needed, so scoring rows of thousands of
        /// tasks stays within the budget. Predictions are the same whatever the budget. The models <c>Fit</c> returns
        /// use it; it is not saved with a model (a loaded model starts at the default): set
        /// <see cref="ApdTransformer.ScoringCacheMegabytes"/> to change it on any model.
        /// </summary>
        public int ScoringCacheMegabytes = Defaults.ScoringCacheMegabytes;

        /// <summary>Throws, naming the option, when a value is out of range.</summary>
        internal void Validate()
        {
            static void Name(string value, string name)
            {
                if (string.IsNullOrWhiteSpace(value))
                    throw new ArgumentException($"{name} must name a column (it is null or empty).", name);
                if (!ApdLimits.IsValidText(value))
                    throw new ArgumentException($"{name} '{value}' is not valid UTF-16 (it has a lone surrogate character).", name);
            }
            static void Positive(double value, string name)
            {
                if (!(value > 0) || double.IsInfinity(value))
                    throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and finite.");
            }
            static void NonNegative(double value, string name)
            {
                if (!(value >= 0) || double.IsInfinity(value))
                    throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or positive and finite.");
            }

            Name(LabelColumnName, nameof(LabelColumnName));
            Name(FeatureColumnName, nameof(FeatureColumnName));
            Name(TaskIdColumnName, nameof(TaskIdColumnName));
            if (LabelColumnName == FeatureColumnName)
                throw new ArgumentException($"{nameof(LabelColumnName)} and {nameof(FeatureColumnName)} are both '{LabelColumnName}'; they must be different columns.", nameof(LabelColumnName));
            if (TaskIdColumnName == LabelColumnName || TaskIdColumnName == FeatureColumnName)
                throw new ArgumentException($"{nameof(TaskIdColumnName)} '{TaskIdColumnName}' is also the {(TaskIdColumnName == LabelColumnName ? "label" : "feature")} column; the task id needs its own column.", nameof(TaskIdColumnName));
            Name(ScoreColumnName, nameof(ScoreColumnName));
            Name(PredictedLabelColumnName, nameof(PredictedLabelColumnName));
            Name(PredictedTaskColumnName, nameof(PredictedTaskColumnName));
            Name(TaskConfidenceColumnName, nameof(TaskConfidenceColumnName));
            var outputs = new[] { ScoreColumnName, PredictedLabelColumnName, PredictedTaskColumnName, TaskConfidenceColumnName };
            if (outputs.Distinct().Count() != outputs.Length)
                throw new ArgumentException($"The output column names ({string.Join(", ", outputs)}) must differ from each other.", nameof(ScoreColumnName));
            CheckTaskName(TaskId, nameof(TaskId), nameof(TaskId));
            if (HiddenLayerSizes is null || HiddenLayerSizes.Length == 0)
                throw new ArgumentException($"{nameof(HiddenLayerSizes)} must list at least one layer size.", nameof(HiddenLayerSizes));
            for (int i = 0; i < HiddenLayerSizes.Length; i++)
                if (HiddenLayerSizes[i] < 1)
                    throw new ArgumentOutOfRangeException(nameof(HiddenLayerSizes), HiddenLayerSizes[i], $"{nameof(HiddenLayerSizes)}[{i}] must be at least 1.");
            if (ImageShape is var (c, h, w))
            {
                if (c < 1 || h < 1 || w < 1)
                    throw new ArgumentOutOfRangeException(nameof(ImageShape), ImageShape, $"{nameof(ImageShape)} dimensions must be at least 1.");
                if ((long)c * h * w > int.MaxValue)
                    throw new ArgumentOutOfRangeException(nameof(ImageShape), ImageShape, $"{nameof(ImageShape)} has {(long)c * h * w:N0} values; a feature vector holds at most {int.MaxValue:N0}.");
            }
            if (ConvolutionLayers is { Length: > 0 })
            {
                for (int i = 0; i < ConvolutionLayers.Length; i++)
                    if (ConvolutionLayers[i] < 1)
                        throw new ArgumentOutOfRangeException(nameof(ConvolutionLayers), ConvolutionLayers[i], $"{nameof(ConvolutionLayers)}[{i}] must be at least 1 channel.");
                if (ImageShape is null)
                    throw new ArgumentException($"{nameof(ConvolutionLayers)} needs {nameof(ImageShape)} (channels, height, width) of the feature vector.", nameof(ImageShape));
                if (ConvolutionKernelSize < 1)
                    throw new ArgumentOutOfRangeException(nameof(ConvolutionKernelSize), ConvolutionKernelSize, $"{nameof(ConvolutionKernelSize)} must be at least 1.");
                var (channels, height, width) = ImageShape.Value;
                var output = ToArchitecture(channels * height * width).ConvolutionOutput!;
                if (output.Height < 1 || output.Width < 1)
                    throw new ArgumentException($"{nameof(ImageShape)} {ImageShape} is too small for {ConvolutionLayers.Length} convolution blocks of kernel size {ConvolutionKernelSize}.", nameof(ImageShape));
            }
            // Layer sizes and memory as far as known without data (the first layer's input is checked again in Fit).
            ApdLimits.CheckArchitecture(ToArchitecture(ImageLayout?.Size ?? 1), ApdLimits.AvailableBytes);
            if (NumberOfEpochs < 1)
                throw new ArgumentOutOfRangeException(nameof(NumberOfEpochs), NumberOfEpochs, $"{nameof(NumberOfEpochs)} must be at least 1.");
            if (BatchSize < 1)
                throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"{nameof(BatchSize)} must be at least 1.");
            Positive(LearningRate, nameof(LearningRate));
            Positive(LearningRateDecay, nameof(LearningRateDecay));
            if (LearningRateDecay > 1)
                throw new ArgumentOutOfRangeException(nameof(LearningRateDecay), LearningRateDecay, $"{nameof(LearningRateDecay)} must be in (0, 1].");
            NonNegative(SparsityStrength, nameof(SparsityStrength));
            NonNegative(RetroactiveStrength, nameof(RetroactiveStrength));
            NonNegative(MaskSparsityStrength, nameof(MaskSparsityStrength));
            NonNegative(WeightDecay, nameof(WeightDecay));
            Positive(GradientScale, nameof(GradientScale));
            if (ConsolidationInterval < 1)
                throw new ArgumentOutOfRangeException(nameof(ConsolidationInterval), ConsolidationInterval, $"{nameof(ConsolidationInterval)} (s) must be at least 1.");
            if (RetroactiveWindow < 0)
                throw new ArgumentOutOfRangeException(nameof(RetroactiveWindow), RetroactiveWindow, $"{nameof(RetroactiveWindow)} (W) must be zero (no window) or positive.");
            if (InitialClusterCount < 1)
                throw new ArgumentOutOfRangeException(nameof(InitialClusterCount), InitialClusterCount, $"{nameof(InitialClusterCount)} (K₀) must be at least 1.");
            if (ClusterCountIncrement < 0)
                throw new ArgumentOutOfRangeException(nameof(ClusterCountIncrement), ClusterCountIncrement, $"{nameof(ClusterCountIncrement)} (k) must be zero or positive.");
            NonNegative(ConsolidationThreshold, nameof(ConsolidationThreshold));
            NonNegative(ProximalStrength, nameof(ProximalStrength));
            if (InitialMaskLogit is double logit && !double.IsFinite(logit))
                throw new ArgumentOutOfRangeException(nameof(InitialMaskLogit), logit, $"{nameof(InitialMaskLogit)} must be finite (or null).");
            if (LowRankAdaptiveRank < 0)
                throw new ArgumentOutOfRangeException(nameof(LowRankAdaptiveRank), LowRankAdaptiveRank, $"{nameof(LowRankAdaptiveRank)} must be zero (none) or positive.");
            int layerCount = (ConvolutionLayers?.Length ?? 0) + HiddenLayerSizes.Length;
            if (LowRankAdaptiveLayers < 1 || LowRankAdaptiveLayers > layerCount)
                throw new ArgumentOutOfRangeException(nameof(LowRankAdaptiveLayers), LowRankAdaptiveLayers, $"{nameof(LowRankAdaptiveLayers)} must be between 1 and the network's {layerCount} layers.");
            Positive(LowRankLearningRateMultiplier, nameof(LowRankLearningRateMultiplier));
            if (!(LowRankKeptEnergy > 0 && LowRankKeptEnergy <= 1))
                throw new ArgumentOutOfRangeException(nameof(LowRankKeptEnergy), LowRankKeptEnergy, $"{nameof(LowRankKeptEnergy)} must be in (0, 1].");
            if (!Enum.IsDefined(LearningRateSchedule))
                throw new ArgumentOutOfRangeException(nameof(LearningRateSchedule), LearningRateSchedule, $"Unknown {nameof(LearningRateSchedule)}.");
            if (!Enum.IsDefined(LowRankLearningRateSchedule))
                throw new ArgumentOutOfRangeException(nameof(LowRankLearningRateSchedule), LowRankLearningRateSchedule, $"Unknown {nameof(LowRankLearningRateSchedule)}.");
            if (!Enum.IsDefined(RetroactiveUpdate))
                throw new ArgumentOutOfRangeException(nameof(RetroactiveUpdate), RetroactiveUpdate, $"Unknown {nameof(RetroactiveUpdate)} mode.");
            if (!Enum.IsDefined(DataLoading))
                throw new ArgumentOutOfRangeException(nameof(DataLoading), DataLoading, $"Unknown {nameof(DataLoading)} mode.");
            if (InMemoryLimitMegabytes < 0)
                throw new ArgumentOutOfRangeException(nameof(InMemoryLimitMegabytes), InMemoryLimitMegabytes, $"{nameof(InMemoryLimitMegabytes)} must be zero or positive.");
            if (ShufflePoolSize < 1)
                throw new ArgumentOutOfRangeException(nameof(ShufflePoolSize), ShufflePoolSize, $"{nameof(ShufflePoolSize)} must be at least 1 row.");
            if (ScoringCacheMegabytes < 0)
                throw new ArgumentOutOfRangeException(nameof(ScoringCacheMegabytes), ScoringCacheMegabytes, $"{nameof(ScoringCacheMegabytes)} must be zero or positive.");
        }

        /// <summary>A snapshot, so that later changes to this instance do not affect a trainer already created.</summary>
        internal Options Snapshot()
        {
            var copy = (Options)MemberwiseClone();
            copy.HiddenLayerSizes = (int[])HiddenLayerSizes.Clone();
            copy.ConvolutionLayers = (int[]?)ConvolutionLayers?.Clone();
            return copy;
        }

        internal ApdHyperparameters ToHyperparameters(int seed) => new()
        {
            NumberOfEpochs = NumberOfEpochs,
            BatchSize = BatchSize,
            LearningRate = LearningRate,
            LearningRateSchedule = LearningRateSchedule,
            LearningRateDecay = LearningRateDecay,
            SparsityStrength = SparsityStrength,
            RetroactiveStrength = RetroactiveStrength,
            MaskSparsityStrength = MaskSparsityStrength,
            WeightDecay = WeightDecay,
            GradientScale = GradientScale,
            ConsolidationInterval = ConsolidationInterval,
            InitialClusterCount = InitialClusterCount,
            ClusterCountIncrement = ClusterCountIncrement,
            ConsolidationThreshold = ConsolidationThreshold,
            Seed = seed,
            RetroactiveUpdate = RetroactiveUpdate,
            RetroactiveWindow = RetroactiveWindow,
            TrainFirstTaskAdaptive = TrainFirstTaskAdaptive,
            AdaptiveStartsAtZero = AdaptiveStartsAtZero,
            ProximalStrength = ProximalStrength,
            InitialMaskLogit = InitialMaskLogit,
            HalfPrecisionStorage = HalfPrecisionStorage,
            LowRankAdaptiveRank = LowRankAdaptiveRank,
            LowRankAdaptiveLayers = LowRankAdaptiveLayers,
            LowRankKeptEnergy = LowRankKeptEnergy,
            LowRankLearningRateMultiplier = LowRankLearningRateMultiplier,
            LowRankLearningRateSchedule = LowRankLearningRateSchedule,
        };

        internal ApdArchitecture ToArchitecture(int inputSize) => new(inputSize, HiddenLayerSizes.ToArray(),
            (ConvolutionLayers ?? Array.Empty<int>()).Select(c => new ConvolutionBlock(c, ConvolutionKernelSize)).ToArray(),
            ConvolutionLayers is { Length: > 0 } ? ImageLayout : null);

        /// <summary><see cref="ImageShape"/> as a layout; with or without convolutions, the feature size must equal C·H·W.</summary>
        internal ImageLayout? ImageLayout => ImageShape is var (c, h, w) ? new ImageLayout(c, h, w) : null;

        /// <summary>A task name must contain a visible character and be well-formed UTF-16 (so a saved model keeps it
        /// exactly); the same rule for <see cref="TaskId"/>, <c>Fit</c>'s task argument and the task id column.</summary>
        internal static void CheckTaskName(string? task, string source, string paramName)
        {
            if (string.IsNullOrWhiteSpace(task))
                throw new ArgumentException($"The task name in {source} must not be null, empty or only white space.", paramName);
            if (!ApdLimits.IsValidText(task))
                throw new ArgumentException($"The task name '{task}' in {source} is not valid UTF-16 (it has a lone surrogate character) and would change when saved.", paramName);
        }
    }
}
