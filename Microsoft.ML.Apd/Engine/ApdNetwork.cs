using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// A stack of decomposed layers (conv blocks, then fully-connected layers with ReLU) plus one head per task.
/// Not thread-safe for mutation; <see cref="Forward"/> may be called concurrently once training is over: it reads only
/// immutable stored tensors and a thread-safe cache of each task's composed θ, bounded by <see cref="WeightCache"/>'s
/// budget (least recently used tasks evicted).
/// </summary>
internal sealed partial class ApdNetwork : IDisposable
{
    private readonly List<DecomposedLayer> _layers;
    private readonly List<string> _tasks = new();
    private readonly Dictionary<string, TaskHead> _heads = new();
    private readonly Dictionary<string, TaskInputModel> _inputModels = new();
    // Per task, what scoring derives from the stored parameters (θ_t as tensors, θ_t in managed arrays for single rows,
    // the first layer's factors for task inference); valid until the next mutation.
    private readonly TaskWeightCache _cache = new();
    private bool _disposed;

    private ApdNetwork(ApdArchitecture architecture, Device device, List<DecomposedLayer> layers)
    {
        Architecture = architecture;
        Device = device;
        _layers = layers;
    }

    /// <summary>Creates an untrained network (σ initialised from <paramref name="seed"/>) on <paramref name="device"/>.</summary>
    public static ApdNetwork Create(ApdArchitecture architecture, Device device, int seed)
    {
        var shapes = LayerShapes(architecture);
        using var generator = new Generator((ulong)seed, device);
        var layers = new List<DecomposedLayer>();
        foreach (var (shape, isConv) in shapes)
        {
            // The authors' variance scaling: fan_in = product of all but the output dimension (in·k·k for conv).
            long fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            var sigma = TensorOwnership.Keep(() => VarianceScaling.Sample(shape, fanIn, generator, device));
            layers.Add(isConv ? new DecomposedConv2d(sigma) : new DecomposedLinear(sigma));
        }
        return new ApdNetwork(architecture, device, layers);
    }

    /// <summary>Weight shapes of the decomposed layers (conv first), validating the architecture.</summary>
    internal static List<(long[] Shape, bool IsConv)> LayerShapes(ApdArchitecture architecture)
    {
        if (architecture.InputSize <= 0) throw new ArgumentException("InputSize must be positive.", nameof(architecture));
        var shapes = new List<(long[], bool)>();
        long features = architecture.InputSize;
        if (architecture.ConvolutionBlocks.Count > 0)
        {
            var image = architecture.Image ?? throw new ArgumentException("Convolution blocks need an image layout.", nameof(architecture));
            if (image.Channels <= 0 || image.Height <= 0 || image.Width <= 0 || image.Size != architecture.InputSize)
                throw new ArgumentException("Image layout does not match InputSize.", nameof(architecture));
            foreach (var block in architecture.ConvolutionBlocks)
            {
                if (block.OutputChannels <= 0 || block.KernelSize <= 0 || block.KernelSize > image.Height || block.KernelSize > image.Width)
                    throw new ArgumentException($"Convolution block {block} does not fit a {image.Height}×{image.Width} input.", nameof(architecture));
                shapes.Add(([block.OutputChannels, image.Channels, block.KernelSize, block.KernelSize], true));
                image = block.OutputOf(image);
                if (image.Height <= 0 || image.Width <= 0) throw new ArgumentException("Convolution blocks shrink the image to nothing.", nameof(architecture));
            }
            features = image.Size;
        }
        foreach (var size in architecture.HiddenLayerSizes)
        {
            if (size <= 0) throw new ArgumentException("Hidden layer sizes must be positive.", nameof(architecture));
            shapes.Add(([size, features], false));
            features = size;
        }
        return shapes;
    }

    public ApdArchitecture Architecture { get; }
    public Device Device { get; }
    /// <summary>Learned tasks in the order they were learned.</summary>
    public IReadOnlyList<string> Tasks => _tasks;
    public int ClassCount(string task) => HeadOf(task).ClassCount;

    /// <summary>How many knowledge consolidations ran since the last freeze (K = K₀ + k·(consolidations − 1) for the
    /// next one): each window of following tasks clusters afresh.</summary>
    internal int ConsolidationCount { get; set; }
    /// <summary>Tasks ever added, forgotten ones included: the clock of the consolidation schedule
    /// (<see cref="KnowledgeConsolidation.IsDue"/>), which forgetting therefore never moves.</summary>
    internal int LearnedTaskCount { get; private set; }
    internal IReadOnlyList<DecomposedLayer> Layers => _layers;
    /// <summary>The tasks whose θ follows σ (the retroactive update keeps them as σ moves; consolidation clusters them),
    /// in the order they were learned: every task not frozen into a cohort (<see cref="FreezeFollowingTasks"/>).</summary>
    internal IReadOnlyList<string> FollowingTasks
        => _layers.Count == 0 ? _tasks : _tasks.Where(t => _layers[0].Slots[t].FrozenOn is null).ToList();

    /// <summary>
    /// Freezes every following task into a new cohort (id: <see cref="LearnedTaskCount"/>): from now on they use σ and
    /// σ̃ as they are, their θ never changes again, and the retroactive update and consolidation no longer touch them, so
    /// the cost of training a task stops growing with them (<see cref="ApdHyperparameters.RetroactiveWindow"/>). Scoring
    /// is unchanged bit for bit. The next consolidation counts from 1 again.
    /// </summary>
    internal void FreezeFollowingTasks()
    {
        foreach (var layer in _layers) layer.Freeze(LearnedTaskCount);
        ConsolidationCount = 0;
    }
    internal int ConvolutionLayerCount => Architecture.ConvolutionBlocks.Count;
    /// <summary>Width of the last hidden representation (input of the heads).</summary>
    internal long HeadInputSize => Architecture.HeadInputSize;

    /// <summary>The scoring cache: its budget is <see cref="ApdTrainer.Options.ScoringCacheMegabytes"/>.</summary>
    internal TaskWeightCache WeightCache => _cache;

    internal TaskHead HeadOf(string task)
        => _heads.TryGetValue(task, out var head) ? head : throw new KeyNotFoundException($"Unknown task '{task}'.");

    /// <summary>The task's model of its inputs; null for a task loaded from a file of format 3 or older.</summary>
    internal TaskInputModel? InputModelOf(string task)
    {
        HeadOf(task);
        return _inputModels.GetValueOrDefault(task);
    }

    /// <summary>Registers a trained task (slots per layer in layer order, its model of its inputs if any; ownership
    /// moves to the network).</summary>
    internal void AddTask(string task, TaskHead head, IReadOnlyList<TaskSlot> slots, TaskInputModel? inputs = null)
    {
        if (_heads.ContainsKey(task)) throw new InvalidOperationException($"Task '{task}' already exists.");
        if (slots.Count != _layers.Count) throw new ArgumentException("One slot per layer expected.", nameof(slots));
        _tasks.Add(task);
        LearnedTaskCount++;
        _heads[task] = head;
        if (inputs is not null) _inputModels[task] = inputs;
        for (int l = 0; l < _layers.Count; l++) _layers[l].Slots[task] = slots[l];
        InvalidateCache();
    }

    /// <summary>Drops every cached θ; called after any mutation (training, consolidation, forgetting, loading).</summary>
    internal void InvalidateCache() => _cache.Clear();

    /// <summary>
    /// The network function with the given per-layer weights: input reshaped to [N, C, H, W] for conv blocks,
    /// flattened before the fully-connected layers, then the head. Shared by training and inference so both compute
    /// exactly the same thing.
    /// </summary>
    internal Tensor ForwardWith(Tensor features, Func<int, (Tensor Theta, Tensor Bias)> layerWeights, Tensor headWeight, Tensor headBias)
    {
        var x = features;
        if (ConvolutionLayerCount > 0)
        {
            var image = Architecture.Image!;
            x = x.reshape(x.shape[0], image.Channels, image.Height, image.Width);
        }
        for (int l = 0; l < _layers.Count; l++)
        {
            if (l == ConvolutionLayerCount && l > 0) x = x.flatten(1);
            var (theta, bias) = layerWeights(l);
            x = _layers[l].Apply(x, theta, bias);
        }
        if (_layers.Count == ConvolutionLayerCount && _layers.Count > 0) x = x.flatten(1);
        return nn.functional.linear(x, headWeight, headBias);
    }

    /// <summary>Logits [N, ClassCount(task)] for features [N, InputSize] (any device; moved to <see cref="Device"/>).
    /// Uses the composed, thresholded θ of the task; no autograd. The caller disposes the result.</summary>
    public Tensor Forward(Tensor features, string task)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var head = HeadOf(task);
        if (features.dim() != 2 || features.shape[1] != Architecture.InputSize)
            throw new ArgumentException($"Features must be [N, {Architecture.InputSize}].", nameof(features));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var thetas = Composed(task);
        var x = features.to(ScalarType.Float32, Device);
        var logits = ForwardWith(x, l => (thetas[l], _layers[l].Slots[task].Bias), head.Weight, head.Bias);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>The task's composed weights in managed arrays, for scoring one row without libtorch; null for
    /// networks with convolution blocks. Cached like <see cref="Forward"/>'s θ.</summary>
    internal ManagedTaskNetwork? ManagedWeights(string task)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var head = HeadOf(task);
        if (ConvolutionLayerCount > 0) return null;
        return _cache.Use(task, t =>
        {
            using var scope = NewDisposeScope();
            return ManagedTaskNetwork.Create(_layers.Select(layer => layer.ComposeStored(t)).ToList(),
                _layers.Select(layer => layer.Slots[t].Bias).ToList(), head);
        }, managed => managed);
    }

    /// <summary>θ_t of every layer, composed once per task and cached until the next mutation or eviction: new handles
    /// on the cached tensors, in the caller's dispose scope (so an eviction meanwhile frees nothing the caller uses).</summary>
    private Tensor[] Composed(string task)
        => _cache.Use(task, t => new ComposedTheta(_layers.Select(layer => TensorOwnership.Keep(() => layer.ComposeStored(t))).ToArray()),
            composed => composed.Thetas.Select(theta => theta.alias()).ToArray());

    /// <summary>A task's θ per layer, as cached.</summary>
    private sealed class ComposedTheta(Tensor[] thetas) : ICachedWeights
    {
        public Tensor[] Thetas { get; } = thetas;
        public long Bytes { get; } = thetas.Sum(t => t.numel() * t.ElementSize);
        public void Dispose() { foreach (var t in Thetas) t.Dispose(); }
    }

    /// <summary>Removes the task's parameters; every other task's output stays bit-identical (σ, their slots, heads
    /// and locally-shared tensors are untouched; a cluster's σ̃_g, or a frozen cohort, is dropped only when no member
    /// is left).</summary>
    public void Forget(string task)
    {
        var head = HeadOf(task);
        foreach (var layer in _layers) layer.Remove(task);
        _heads.Remove(task);
        head.Dispose();
        if (_inputModels.Remove(task, out var inputs)) inputs.Dispose();
        _tasks.Remove(task);
        InvalidateCache();
    }

    /// <summary>Stored non-zeros per layer and in total, and capacity relative to one plain network with one head per task.</summary>
    public CapacityReport GetCapacity()
    {
        using var scope = NewDisposeScope();
        static long NonZeros(Tensor t) => t.count_nonzero().item<long>();
        var layers = new List<LayerCapacity>();
        long baseParameters = 0;
        var perTask = _tasks.ToDictionary(t => t, _ => 0L);
        var groups = new List<IReadOnlyList<string>>();
        for (int l = 0; l < _layers.Count; l++)
        {
            var layer = _layers[l];
            long masks = 0, biases = 0, adaptive = 0;
            foreach (var (task, slot) in layer.Slots)
            {
                masks += NonZeros(slot.MaskLogits);
                biases += NonZeros(slot.Bias);
                // τ_t's stored elements and U_t, V_t's parameters: the task's adaptive part.
                long taskAdaptive = slot.Adaptive.NonZeros + (slot.LowRank?.ParameterCount ?? 0);
                adaptive += taskAdaptive;
                perTask[task] += taskAdaptive;
            }
            // A frozen cohort's σ_c and σ̃_c are stored like σ and σ̃: they count as shared and locally-shared parameters.
            var cohorts = layer.Frozen.Values.ToList();
            long shared = NonZeros(layer.Shared) + cohorts.Sum(c => NonZeros(c.Shared));
            long locallyShared = layer.LocallyShared.Values.Concat(cohorts.SelectMany(c => c.LocallyShared.Values)).Sum(s => s.NonZeros);
            layers.Add(new LayerCapacity($"{layer.Kind}{l + 1}", shared, masks, biases, adaptive, locallyShared, 0));
            baseParameters += layer.WeightCount + layer.OutputCount;
            var clusters = layer.LocallyShared.Keys.Select(g => ((int?)null, g))
                .Concat(layer.Frozen.SelectMany(c => c.Value.LocallyShared.Keys.Select(g => ((int?)c.Key, g))));
            foreach (var (cohort, g) in clusters.OrderBy(p => p.Item1 ?? int.MaxValue).ThenBy(p => p.g))
            {
                var members = _tasks.Where(t => layer.Slots[t].FrozenOn == cohort && layer.Slots[t].Group == g).ToList();
                if (!groups.Any(existing => existing.SequenceEqual(members))) groups.Add(members);
            }
        }
        long heads = 0;
        foreach (var task in _tasks)
        {
            var head = _heads[task];
            heads += NonZeros(head.Weight) + NonZeros(head.Bias);
            baseParameters += head.Weight.numel() + head.Bias.numel();
        }
        layers.Add(new LayerCapacity("heads", 0, 0, 0, 0, 0, heads));
        // μ_t and v_t are stored per task like a head, but a plain network has nothing like them: they count here, not
        // in the base.
        long inputModels = _inputModels.Values.Sum(m => m.Mean.numel() + m.Variance.numel());
        if (inputModels > 0) layers.Add(new LayerCapacity("inputs", 0, 0, 0, 0, 0, inputModels));
        return new CapacityReport(layers, baseParameters, perTask, groups);
    }

    /// <summary>The first stored tensor with a NaN or infinite element, described ("σ of layer fc2", "task 'a''s head"),
    /// or null when every parameter is finite. A network is checked after training; one that fails is never kept.</summary>
    internal string? FindNonFinite() => FindNonFinite(StoredTensors(trainedTask: null));

    /// <summary><see cref="FindNonFinite()"/> over what training <paramref name="task"/> wrote: σ, every following task's
    /// τ (the retroactive update rewrites them all) and the task's own mask, bias, head and model of its inputs. The
    /// rest — earlier tasks' masks, biases, heads and models of their inputs, the locally-shared σ̃, frozen tasks' τ and
    /// their cohorts — is immutable and was checked when it was written, so the check after a task does not grow with
    /// the earlier tasks beyond the following tasks' τ.</summary>
    internal string? FindNonFiniteAfterTraining(string task) => FindNonFinite(StoredTensors(trainedTask: task));

    /// <summary><see cref="FindNonFinite()"/> over what consolidation wrote: the following tasks' τ and the live σ̃
    /// (frozen tasks and their cohorts are not consolidated).</summary>
    internal string? FindNonFiniteAfterConsolidation()
    {
        IEnumerable<(string Where, Tensor Tensor)> Written()
        {
            for (int l = 0; l < _layers.Count; l++)
            {
                var layer = _layers[l];
                foreach (var (task, slot) in layer.Slots)
                    if (slot.FrozenOn is null) yield return ($"task '{task}''s τ in layer {layer.Kind}{l + 1}", slot.Adaptive.Values);
                foreach (var (g, local) in layer.LocallyShared)
                    yield return ($"the locally-shared σ̃ of group {g} in layer {layer.Kind}{l + 1}", local.Values);
            }
        }
        return FindNonFinite(Written());
    }

    private static string? FindNonFinite(IEnumerable<(string Where, Tensor Tensor)> tensors)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // A sum is finite exactly when every element is, unless it overflows (then the elementwise test decides): one
        // reduction per tensor, nothing allocated the size of the model.
        static bool Finite(Tensor t) => float.IsFinite(t.sum().item<float>()) || t.isfinite().all().item<bool>();
        foreach (var (where, tensor) in tensors)
            if (!Finite(tensor)) return where;
        return null;
    }

    /// <summary>The stored tensors in a fixed order, each with its description; with <paramref name="trainedTask"/>,
    /// only those training it writes (see <see cref="FindNonFiniteAfterTraining"/>).</summary>
    private IEnumerable<(string Where, Tensor Tensor)> StoredTensors(string? trainedTask)
    {
        bool all = trainedTask is null;
        for (int l = 0; l < _layers.Count; l++)
        {
            var layer = _layers[l];
            string name = $"layer {layer.Kind}{l + 1}";
            yield return ($"σ of {name}", layer.Shared);
            foreach (var (task, slot) in layer.Slots)
            {
                // Only the tasks it yields get a description: after a task, that is the following ones, not all T.
                bool trained = all || task == trainedTask;
                if (!trained && slot.FrozenOn is not null) continue;
                string where = $"task '{task}''s mask, bias or τ in {name}";
                if (trained)
                {
                    yield return (where, slot.MaskLogits);
                    yield return (where, slot.Bias);
                    foreach (var factor in LowRankFactors(slot)) yield return (where, factor);
                }
                if (all || slot.FrozenOn is null) yield return (where, slot.Adaptive.Values);
            }
            if (!all) continue;
            foreach (var (g, local) in layer.LocallyShared)
                yield return ($"the locally-shared σ̃ of group {g} in {name}", local.Values);
            foreach (var (c, cohort) in layer.Frozen)
            {
                yield return ($"σ of frozen cohort {c} in {name}", cohort.Shared);
                foreach (var (g, local) in cohort.LocallyShared)
                    yield return ($"the locally-shared σ̃ of group {g} of frozen cohort {c} in {name}", local.Values);
            }
        }
        foreach (var (task, head) in _heads)
            if (all || task == trainedTask)
            {
                yield return ($"task '{task}''s head", head.Weight);
                yield return ($"task '{task}''s head", head.Bias);
            }
        foreach (var (task, inputs) in _inputModels)
            if (all || task == trainedTask)
            {
                yield return ($"task '{task}''s model of its inputs", inputs.Mean);
                yield return ($"task '{task}''s model of its inputs", inputs.Variance);
            }
    }

    private static Tensor[] LowRankFactors(TaskSlot slot) => slot.LowRank is { } lowRank ? [lowRank.Left, lowRank.Right] : [];

    /// <summary>An independent copy (same device) that shares the stored tensors' storage instead of copying it:
    /// stored tensors are immutable (every change — training, retroactive update, consolidation, forgetting — replaces
    /// a tensor and disposes this network's handle on the old one), so mutating either network never changes the other,
    /// and the copy costs a handle per stored tensor, not their bytes.</summary>
    public ApdNetwork Clone()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var copy = new ApdNetwork(Architecture, Device, _layers.Select(l => l.Share()).ToList())
        {
            WeightCache = { BudgetBytes = _cache.BudgetBytes },
            ConsolidationCount = ConsolidationCount,
            LearnedTaskCount = LearnedTaskCount,
        };
        foreach (var task in _tasks)
        {
            copy._tasks.Add(task);
            copy._heads[task] = _heads[task].Share();
            if (_inputModels.TryGetValue(task, out var inputs)) copy._inputModels[task] = inputs.Share();
        }
        return copy;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        InvalidateCache();
        foreach (var layer in _layers) layer.Dispose();
        foreach (var head in _heads.Values) head.Dispose();
        _heads.Clear();
        foreach (var inputs in _inputModels.Values) inputs.Dispose();
        _inputModels.Clear();
        _tasks.Clear();
    }
}
