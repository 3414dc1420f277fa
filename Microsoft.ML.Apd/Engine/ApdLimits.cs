using static System.FormattableString;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// What an APD model may hold: the one set of limits shared by option validation, <c>Fit</c> (before any training) and
/// the loader, so that every model that trains also saves and loads. Exceeding one when creating the trainer or in
/// <c>Fit</c> throws <see cref="ArgumentOutOfRangeException"/> (or <see cref="ArgumentException"/> for data) naming
/// the option or task; in a file, <see cref="InvalidDataException"/>.
/// </summary>
internal static class ApdLimits
{
    /// <summary>Fully-connected hidden layers (<c>HiddenLayerSizes.Length</c>).</summary>
    public const int MaxHiddenLayers = 1024;

    /// <summary>Convolution blocks (<c>ConvolutionLayers.Length</c>).</summary>
    public const int MaxConvolutionBlocks = 1024;

    /// <summary>Tasks of one model.</summary>
    public const int MaxTasks = 1 << 16;

    /// <summary>Classes of one task.</summary>
    public const int MaxClasses = 1 << 20;

    /// <summary>Elements of one stored tensor (a layer's σ, a task's head): 2^28, 1 GiB of float32, so one tensor's
    /// bytes fit one .NET span and its sparse positions an int32.</summary>
    public const long MaxTensorElements = 1L << 28;

    /// <summary>Bytes of a saved model's APD entry, 2 GiB less 1 MiB: the entry is written through, and ML.NET may read
    /// it back into, one array or MemoryStream, which holds less than 2 GiB.</summary>
    public const long MaxModelBytes = (1L << 31) - (1L << 20);

    /// <summary>
    /// Bytes training needs per weight of the decomposed layers, for the up-front memory check: σ stored and trained,
    /// τ_t dense while trained, each with a gradient and Adam's two moments (8 copies), the composed θ, the retroactive
    /// update's per-weight state and earlier tasks' stored τ (about 4 more): 12 float32.
    /// </summary>
    public const long TrainingBytesPerWeight = 12 * sizeof(float);

    /// <summary>
    /// Throws <see cref="ArgumentOutOfRangeException"/> naming the option (<c>HiddenLayerSizes</c>,
    /// <c>ConvolutionLayers</c>) when a layer has more than <see cref="MaxTensorElements"/> weights, there are too many
    /// layers, or training the network would need more than <paramref name="availableBytes"/> of memory.
    /// </summary>
    public static void CheckArchitecture(ApdArchitecture architecture, long availableBytes)
    {
        if (architecture.HiddenLayerSizes.Count > MaxHiddenLayers)
            throw new ArgumentOutOfRangeException("HiddenLayerSizes", architecture.HiddenLayerSizes.Count,
                Invariant($"HiddenLayerSizes has {architecture.HiddenLayerSizes.Count} layers; at most {MaxHiddenLayers} are supported."));
        if (architecture.ConvolutionBlocks.Count > MaxConvolutionBlocks)
            throw new ArgumentOutOfRangeException("ConvolutionLayers", architecture.ConvolutionBlocks.Count,
                Invariant($"ConvolutionLayers has {architecture.ConvolutionBlocks.Count} blocks; at most {MaxConvolutionBlocks} are supported."));
        long weights = 0;
        int convolutions = architecture.ConvolutionBlocks.Count;
        var shapes = ApdNetwork.LayerShapes(architecture);
        for (int l = 0; l < shapes.Count; l++)
        {
            var (shape, isConv) = shapes[l];
            double elements = shape.Aggregate(1.0, (a, b) => a * b);
            string option = isConv ? "ConvolutionLayers" : "HiddenLayerSizes";
            int index = isConv ? l : l - convolutions;
            if (elements > MaxTensorElements)
                throw new ArgumentOutOfRangeException(option, isConv ? architecture.ConvolutionBlocks[index].OutputChannels : architecture.HiddenLayerSizes[index],
                    Invariant($"{option}[{index}] makes a layer of {string.Join(" × ", shape)} = {elements:G4} weights; one layer may hold at most {MaxTensorElements:N0} (2^28)."));
            weights += (long)elements;
        }
        if (weights * (long)sizeof(float) > MaxModelBytes)
            throw new ArgumentOutOfRangeException("HiddenLayerSizes", Invariant($"The network has {weights:N0} weights, {weights * 4.0 / (1L << 30):F1} GiB ") +
                Invariant($"of float32; a saved model holds at most {MaxModelBytes / (double)(1L << 30):F0} GiB. Use smaller HiddenLayerSizes (or ConvolutionLayers)."));
        double needed = (double)weights * TrainingBytesPerWeight;
        if (needed > availableBytes)
            throw new ArgumentOutOfRangeException("HiddenLayerSizes", Invariant($"The network has {weights:N0} weights; training it needs about ") +
                Invariant($"{needed / (1L << 30):F1} GiB, more than the {availableBytes / (double)(1L << 30):F1} GiB of memory available. ") +
                "Use smaller HiddenLayerSizes (or ConvolutionLayers).");
    }

    /// <summary>Memory the process may use: the machine's or the container's limit, as the GC sees it.</summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Throws <see cref="ArgumentException"/> naming the task when adding it would exceed a limit.</summary>
    public static void CheckTask(string task, int existingTasks, int classCount, long headInputSize, string paramName)
    {
        if (existingTasks >= MaxTasks)
            throw new ArgumentException(Invariant($"Task '{task}' would be the model's task number {existingTasks + 1}; a model holds at most {MaxTasks:N0} tasks."), paramName);
        if (classCount > MaxClasses)
            throw new ArgumentException(Invariant($"Task '{task}' has {classCount:N0} classes; a task may have at most {MaxClasses:N0}."), paramName);
        if ((long)classCount * headInputSize > MaxTensorElements)
            throw new ArgumentException(Invariant($"Task '{task}': its head of {classCount:N0} classes × {headInputSize:N0} inputs would exceed {MaxTensorElements:N0} weights."), paramName);
    }

    /// <summary>Throws <see cref="InvalidDataException"/> unless <paramref name="bytes"/> more bytes remain in the
    /// (seekable) stream being loaded: every declared count and size is checked so before anything is allocated.</summary>
    public static void CheckRemaining(BinaryReader reader, long bytes, string what)
    {
        long remaining = reader.BaseStream.Length - reader.BaseStream.Position;
        if (bytes < 0 || bytes > remaining)
            throw new InvalidDataException(Invariant($"Malformed APD model: {what} needs {bytes:N0} bytes, but only {remaining:N0} remain."));
    }

    /// <summary>True when <paramref name="value"/> is well-formed UTF-16 (no lone surrogate), so it round-trips
    /// through the UTF-8 of a saved model unchanged.</summary>
    public static bool IsValidText(string value)
    {
        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) i++;
            else if (char.IsSurrogate(value[i])) return false;
        }
        return true;
    }
}
