using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>Binary format of an <see cref="ApdNetwork"/>: little-endian, float32 dense tensors, sparse τ and σ̃ as
/// (count, positions, values). Version 6 (this build writes it) adds, after each task slot's low-rank part, the id of the
/// frozen cohort the task uses (−1: it follows σ) and, after each layer's σ̃, its frozen cohorts (id, σ_c dense, their σ̃
/// like the layer's). Version 5 (still read) stores each sparse tensor's positions in the smaller
/// of two encodings — LEB128 varints of the gaps between successive flat positions, or a bitmap of the dense shape —
/// and its values as float16 when every value is exactly a float16 (half-precision storage rounds them so), float32
/// otherwise; after each task's head a flag and, when set, the task's model of its inputs (μ_t, v_t dense); and after
/// each task slot its low-rank rank r (0: none) and, when r &gt; 0, U_t and V_t encoded like sparse values; it had no
/// frozen cohorts. Version 4
/// (still read) had no low-rank parts; version 3 (still read) no input models; version 2 (still read) had int32
/// indices or a bitmap, and float32 values. Every count and shape is validated against <see cref="ApdLimits"/> and
/// against the bytes that remain before anything is allocated.</summary>
internal sealed partial class ApdNetwork
{
    private const uint Magic = 0x31445041; // "APD1"
    private const int FormatVersion = 6;
    private const int OldestReadableVersion = 2;

    /// <summary>Writes everything needed to predict and continue training (no optimizer state).</summary>
    public void Save(BinaryWriter writer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (FindNonFinite() is { } where)
            throw new InvalidOperationException($"Cannot save an APD network whose {where} is NaN or infinite.");
        writer.Write(Magic);
        writer.Write(FormatVersion);
        var a = Architecture;
        writer.Write(a.InputSize);
        writer.Write(a.HiddenLayerSizes.Count);
        foreach (var h in a.HiddenLayerSizes) writer.Write(h);
        writer.Write(a.ConvolutionBlocks.Count);
        foreach (var b in a.ConvolutionBlocks) { writer.Write(b.OutputChannels); writer.Write(b.KernelSize); }
        writer.Write(a.Image is not null);
        if (a.Image is { } image) { writer.Write(image.Channels); writer.Write(image.Height); writer.Write(image.Width); }
        writer.Write(ConsolidationCount);
        writer.Write(LearnedTaskCount);
        writer.Write(_tasks.Count);
        foreach (var task in _tasks)
        {
            writer.Write(task);
            var head = _heads[task];
            writer.Write(head.ClassCount);
            WriteDense(writer, head.Weight);
            WriteDense(writer, head.Bias);
            var inputs = _inputModels.GetValueOrDefault(task);
            writer.Write(inputs is not null);
            if (inputs is null) continue;
            WriteDense(writer, inputs.Mean);
            WriteDense(writer, inputs.Variance);
        }
        foreach (var layer in _layers)
        {
            WriteDense(writer, layer.Shared);
            foreach (var task in _tasks)
            {
                var slot = layer.Slots[task];
                WriteDense(writer, slot.MaskLogits);
                WriteDense(writer, slot.Bias);
                WriteSparse(writer, slot.Adaptive);
                writer.Write(slot.Group ?? -1);
                writer.Write((int)(slot.LowRank?.Rank ?? 0));
                if (slot.LowRank is { } lowRank)
                {
                    WriteValues(writer, lowRank.Left);
                    WriteValues(writer, lowRank.Right);
                }
                writer.Write(slot.FrozenOn ?? -1);
            }
            WriteLocallyShared(writer, layer.LocallyShared);
            writer.Write(layer.Frozen.Count);
            foreach (var (c, cohort) in layer.Frozen.OrderBy(p => p.Key))
            {
                writer.Write(c);
                WriteDense(writer, cohort.Shared);
                WriteLocallyShared(writer, cohort.LocallyShared);
            }
        }
    }

    private static void WriteLocallyShared(BinaryWriter writer, Dictionary<int, SparseAdaptive> locallyShared)
    {
        writer.Write(locallyShared.Count);
        foreach (var (g, local) in locallyShared.OrderBy(p => p.Key))
        {
            writer.Write(g);
            WriteSparse(writer, local);
        }
    }

    /// <summary>Reads what <see cref="WriteLocallyShared"/> wrote into <paramref name="locallyShared"/>.</summary>
    private static void ReadLocallyShared(BinaryReader reader, Dictionary<int, SparseAdaptive> locallyShared, long[] shape, Device device, int version)
    {
        int groups = ReadCount(reader, ApdLimits.MaxTasks, "group count");
        for (int g = 0; g < groups; g++)
        {
            int id = ReadCount(reader, int.MaxValue, "group id");
            if (locallyShared.ContainsKey(id)) throw new InvalidDataException("Duplicate group id.");
            locallyShared[id] = ReadSparse(reader, shape, device, version);
        }
    }

    /// <summary>At least the bytes <see cref="Save"/> writes, from shapes and non-zero counts alone (no tensor is read):
    /// what <c>Fit</c> checks against <see cref="ApdLimits.MaxModelBytes"/> at a cost per stored tensor, not per byte.
    /// Exact but for the sparse positions (counted as the smaller of 5 bytes per non-zero and the bitmap, which
    /// bounds the encoding <see cref="WriteSparse"/> picks) and values (4 bytes each, 2 when stored as float16).</summary>
    internal long SaveSizeBound()
    {
        static long Dense(long elements) => sizeof(long) + elements * sizeof(float);
        static long Sparse(SparseAdaptive s) => sizeof(long) + 2 + Math.Min(5 * s.NonZeros, BitmapBytes(s.DenseSize)) + s.NonZeros * sizeof(float);
        long bytes = 64 + 4L * Architecture.HiddenLayerSizes.Count + 8L * Architecture.ConvolutionBlocks.Count;
        foreach (var task in _tasks)
        {
            var head = _heads[task];
            bytes += 5 + System.Text.Encoding.UTF8.GetByteCount(task) + sizeof(int) + Dense(head.Weight.numel()) + Dense(head.Bias.numel()) + 1;
            if (_inputModels.ContainsKey(task)) bytes += 2 * Dense(Architecture.InputSize);
        }
        foreach (var layer in _layers)
        {
            long weights = layer.WeightCount, outputs = layer.OutputCount;   // native calls: once per layer, not per task
            bytes += Dense(weights) + 2 * sizeof(int) + layer.Frozen.Count * (2 * sizeof(int) + Dense(weights));
            foreach (var slot in layer.Slots.Values)
                bytes += 2 * Dense(outputs) + Sparse(slot.Adaptive) + 3 * sizeof(int)
                    + (slot.LowRank is { } lowRank ? 2 + lowRank.ParameterCount * sizeof(float) : 0);
            foreach (var local in layer.LocallyShared.Values.Concat(layer.Frozen.Values.SelectMany(c => c.LocallyShared.Values)))
                bytes += sizeof(int) + Sparse(local);
        }
        return bytes;
    }

    /// <summary>Reads what <see cref="Save"/> wrote; throws <see cref="InvalidDataException"/> on malformed input.</summary>
    public static ApdNetwork Load(BinaryReader reader, Device device)
    {
        ApdNetwork? network = null;
        try
        {
            if (reader.ReadUInt32() != Magic) throw new InvalidDataException("Not an APD network.");
            int version = reader.ReadInt32();
            if (version < OldestReadableVersion || version > FormatVersion) throw new InvalidDataException($"Unsupported APD format version {version}.");
            int inputSize = ReadCount(reader, int.MaxValue, "input size");
            var hidden = new List<int>();
            int hiddenCount = ReadCount(reader, ApdLimits.MaxHiddenLayers, "hidden layer count");
            for (int i = 0; i < hiddenCount; i++) hidden.Add(ReadCount(reader, int.MaxValue, "hidden size"));
            var blocks = new List<ConvolutionBlock>();
            int blockCount = ReadCount(reader, ApdLimits.MaxConvolutionBlocks, "convolution block count");
            for (int i = 0; i < blockCount; i++) blocks.Add(new ConvolutionBlock(ReadCount(reader, int.MaxValue, "channels"), ReadCount(reader, int.MaxValue, "kernel")));
            ImageLayout? image = reader.ReadBoolean()
                ? new ImageLayout(ReadCount(reader, int.MaxValue, "channels"), ReadCount(reader, int.MaxValue, "height"), ReadCount(reader, int.MaxValue, "width"))
                : null;
            var architecture = new ApdArchitecture(inputSize, hidden, blocks, image);
            List<(long[] Shape, bool IsConv)> shapes;
            try
            {
                // The limits training is held to (the memory check is the trainer's, not the file's).
                ApdLimits.CheckArchitecture(architecture, long.MaxValue);
                shapes = LayerShapes(architecture);
            }
            catch (ArgumentException e) { throw new InvalidDataException("Invalid architecture: " + e.Message, e); }
            ApdLimits.CheckRemaining(reader, shapes.Sum(s => Numel(s.Shape)) * sizeof(float), "the layers' σ");

            if (version == 2)
            {
                reader.ReadInt32(); // seed and λ₁, which nothing read
                reader.ReadDouble();
            }
            int consolidations = ReadCount(reader, int.MaxValue, "consolidation count");
            int? learned = version == 2 ? null : ReadCount(reader, int.MaxValue, "learned task count");
            int taskCount = ReadCount(reader, ApdLimits.MaxTasks, "task count");
            if (learned < taskCount) throw new InvalidDataException("Fewer tasks learned than stored.");

            // Layers are created empty and filled as read, so a failure part-way disposes everything read so far.
            network = new ApdNetwork(architecture, device, new List<DecomposedLayer>())
            {
                ConsolidationCount = consolidations,
                // Format 2 did not count forgotten tasks.
                LearnedTaskCount = learned ?? taskCount,
            };
            long headInput = network.HeadInputSize;
            for (int i = 0; i < taskCount; i++)
            {
                string task = reader.ReadString();
                if (network._heads.ContainsKey(task)) throw new InvalidDataException($"Duplicate task '{task}'.");
                int classes = ReadCount(reader, ApdLimits.MaxClasses, "class count");
                if (classes * headInput > ApdLimits.MaxTensorElements) throw new InvalidDataException("Head too large.");
                var weight = ReadDense(reader, [classes, headInput], device);
                Tensor bias;
                try { bias = ReadDense(reader, [classes], device); }
                catch { weight.Dispose(); throw; }
                network._heads[task] = new TaskHead(weight, bias);
                network._tasks.Add(task);
                if (version >= 4 && reader.ReadBoolean())
                    network._inputModels[task] = ReadInputModel(reader, inputSize, device);
            }
            foreach (var (shape, isConv) in shapes)
            {
                var sigma = ReadDense(reader, shape, device);
                var layer = isConv ? (DecomposedLayer)new DecomposedConv2d(sigma) : new DecomposedLinear(sigma);
                network._layers.Add(layer);
                foreach (var task in network._tasks)
                {
                    var maskLogits = ReadDense(reader, [shape[0]], device);
                    Tensor? bias = null;
                    SparseAdaptive? adaptive = null;
                    LowRankAdaptive? lowRank = null;
                    try
                    {
                        bias = ReadDense(reader, [shape[0]], device);
                        adaptive = ReadSparse(reader, shape, device, version);
                        int group = reader.ReadInt32();
                        if (group < -1) throw new InvalidDataException("Invalid group id.");
                        lowRank = version >= 5 ? ReadLowRank(reader, shape, device) : null;
                        int frozenOn = version >= 6 ? reader.ReadInt32() : -1;
                        if (frozenOn < -1) throw new InvalidDataException("Invalid frozen cohort id.");
                        layer.Slots[task] = new TaskSlot(maskLogits, bias, adaptive, group >= 0 ? group : null, lowRank, frozenOn >= 0 ? frozenOn : null);
                    }
                    catch
                    {
                        maskLogits.Dispose(); bias?.Dispose(); adaptive?.Dispose(); lowRank?.Dispose();
                        throw;
                    }
                }
                ReadLocallyShared(reader, layer.LocallyShared, shape, device, version);
                int cohorts = version >= 6 ? ReadCount(reader, ApdLimits.MaxTasks, "frozen cohort count") : 0;
                for (int c = 0; c < cohorts; c++)
                {
                    int id = ReadCount(reader, int.MaxValue, "frozen cohort id");
                    if (layer.Frozen.ContainsKey(id)) throw new InvalidDataException("Duplicate frozen cohort id.");
                    var cohort = new FrozenCohort(ReadDense(reader, shape, device), new Dictionary<int, SparseAdaptive>());
                    layer.Frozen[id] = cohort;
                    ReadLocallyShared(reader, cohort.LocallyShared, shape, device, version);
                }
                if (layer.Slots.Values.Any(slot => slot.FrozenOn is int c && !layer.Frozen.ContainsKey(c)))
                    throw new InvalidDataException("A task uses a frozen cohort the layer does not have.");
            }
            // Every layer of a task follows σ, or is frozen in the same cohort: a task stops following σ as a whole.
            foreach (var task in network._tasks)
                if (network._layers.Any(layer => layer.Slots[task].FrozenOn != network._layers[0].Slots[task].FrozenOn))
                    throw new InvalidDataException($"Task '{task}' is frozen in different cohorts in different layers.");
            return network;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException or ArgumentException or OverflowException)
        {
            network?.Dispose();
            throw new InvalidDataException("Malformed APD network: " + e.Message, e);
        }
        catch
        {
            network?.Dispose();
            throw;
        }
    }

    /// <summary>A slot's rank and, when it is not 0, U [out, r] and V [fan-in, r] (null for rank 0).</summary>
    private static LowRankAdaptive? ReadLowRank(BinaryReader reader, long[] shape, Device device)
    {
        long outputs = shape[0], fanIn = LowRankAdaptive.FanIn(shape);
        int rank = ReadCount(reader, (int)Math.Min(outputs, int.MaxValue), "low-rank rank");
        if (rank == 0) return null;
        if (rank * Math.Max(outputs, fanIn) > ApdLimits.MaxTensorElements) throw new InvalidDataException("Low-rank factor too large.");
        var left = tensor(ReadValues(reader, rank * outputs), [outputs, rank], device: device);
        try { return new LowRankAdaptive(left, tensor(ReadValues(reader, rank * fanIn), [fanIn, rank], device: device)); }
        catch { left.Dispose(); throw; }
    }

    private static TaskInputModel ReadInputModel(BinaryReader reader, int inputSize, Device device)
    {
        var mean = ReadDense(reader, [inputSize], device);
        Tensor variance;
        try { variance = ReadDense(reader, [inputSize], device); }
        catch { mean.Dispose(); throw; }
        var model = new TaskInputModel(mean, variance);
        using var scope = NewDisposeScope();
        // The likelihood divides by v_t and takes its log.
        if (!(variance > 0).all().item<bool>())
        {
            model.Dispose();
            throw new InvalidDataException("An input model's variance is not positive.");
        }
        return model;
    }

    private static long Numel(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    private static int ReadCount(BinaryReader reader, int max, string what)
    {
        int value = reader.ReadInt32();
        if (value < 0 || value > max) throw new InvalidDataException($"Invalid {what}: {value}.");
        return value;
    }

    private static void WriteDense(BinaryWriter writer, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var data = tensor.detach().cpu().contiguous().data<float>().ToArray();
        writer.Write((long)data.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
    }

    private static Tensor ReadDense(BinaryReader reader, long[] shape, Device device)
    {
        long count = reader.ReadInt64();
        if (count != Numel(shape)) throw new InvalidDataException($"Expected {Numel(shape)} values, found {count}.");
        var data = ReadFloats(reader, count);
        return tensor(data, shape, device: device);
    }

    /// <summary>Reads float32 values straight into their array (no byte copy), after checking they are there.</summary>
    private static float[] ReadFloats(BinaryReader reader, long count)
    {
        ApdLimits.CheckRemaining(reader, count * sizeof(float), $"a tensor of {count:N0} values");
        var data = new float[count];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        foreach (var v in data) if (!float.IsFinite(v)) throw new InvalidDataException("Non-finite parameter.");
        return data;
    }

    private const byte IndexList = 0, Bitmap = 1, Gaps = 2;
    private const byte SinglePrecision = 0, HalfPrecision = 1;

    internal static void WriteSparse(BinaryWriter writer, SparseAdaptive sparse)
    {
        using var scope = NewDisposeScope();
        var indices = sparse.Indices.cpu().data<long>().ToArray();
        var values = sparse.Values.detach().cpu().contiguous().data<float>().ToArray();
        long size = sparse.DenseSize;
        writer.Write((long)indices.Length);
        // Gaps take at most 5 bytes (no tensor has more than ApdLimits.MaxTensorElements = 2^28 elements), rarely more
        // than 1 or 2, so they beat v2's int32 list; a bitmap wins above a density of about 1/8.
        if (GapBytes(indices) <= BitmapBytes(size))
        {
            writer.Write(Gaps);
            long previous = -1;
            foreach (long index in indices)
            {
                WriteVarint(writer, (ulong)(index - previous - 1));
                previous = index;
            }
        }
        else
        {
            writer.Write(Bitmap);
            var bitmap = new byte[BitmapBytes(size)];
            foreach (long index in indices) bitmap[index >> 3] |= (byte)(1 << (int)(index & 7));
            writer.Write(bitmap);
        }
        WriteValues(writer, values);
    }

    /// <summary>A tensor's values in row-major order, as float16 when every value is exactly a float16 (half-precision
    /// storage rounds them so), else float32, after a byte that says which.</summary>
    private static void WriteValues(BinaryWriter writer, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        WriteValues(writer, tensor.detach().cpu().contiguous().data<float>().ToArray());
    }

    private static void WriteValues(BinaryWriter writer, float[] values)
    {
        if (values.All(v => (float)(Half)v == v))
        {
            writer.Write(HalfPrecision);
            writer.Write(MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()));
        }
        else
        {
            writer.Write(SinglePrecision);
            writer.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    /// <summary>Reads what <see cref="WriteValues(BinaryWriter, float[])"/> wrote.</summary>
    private static float[] ReadValues(BinaryReader reader, long count) => reader.ReadByte() switch
    {
        SinglePrecision => ReadFloats(reader, count),
        HalfPrecision => ReadHalves(reader, count),
        var kind => throw new InvalidDataException($"Unknown value encoding {kind}."),
    };

    private static long BitmapBytes(long size) => (size + 7) / 8;

    /// <summary>Bytes of the gap encoding: one LEB128 varint (7 bits per byte) per position.</summary>
    private static long GapBytes(long[] indices)
    {
        long bytes = 0, previous = -1;
        foreach (long index in indices)
        {
            bytes += VarintBytes((ulong)(index - previous - 1));
            previous = index;
        }
        return bytes;
    }

    private static int VarintBytes(ulong value)
    {
        int bytes = 1;
        while (value >= 0x80) { value >>= 7; bytes++; }
        return bytes;
    }

    private static void WriteVarint(BinaryWriter writer, ulong value)
    {
        while (value >= 0x80)
        {
            writer.Write((byte)(value | 0x80));
            value >>= 7;
        }
        writer.Write((byte)value);
    }

    internal static SparseAdaptive ReadSparse(BinaryReader reader, long[] shape, Device device, int version = FormatVersion)
    {
        long size = Numel(shape);
        long count = reader.ReadInt64();
        if (count < 0 || count > size) throw new InvalidDataException($"Invalid non-zero count {count}.");
        byte encoding = reader.ReadByte();
        // At least one byte per gap, and the smallest values (float16 in format 3) must remain.
        long positionBytes = encoding switch { Bitmap => BitmapBytes(size), Gaps => count, _ => count * sizeof(int) };
        ApdLimits.CheckRemaining(reader, positionBytes + count * (version < 3 ? sizeof(float) : 2),
            $"a sparse tensor of {count:N0} values");
        var indices = encoding switch
        {
            IndexList => ReadIndexList(reader, count, size),
            Bitmap => ReadBitmap(reader, count, size),
            Gaps when version >= 3 => ReadGaps(reader, count, size),
            var kind => throw new InvalidDataException($"Unknown sparse encoding {kind}."),
        };
        var values = version < 3 ? ReadFloats(reader, count) : ReadValues(reader, count);
        return SparseAdaptive.FromParts(shape, tensor(indices, device: device), tensor(values, device: device));
    }

    private static float[] ReadHalves(BinaryReader reader, long count)
    {
        ApdLimits.CheckRemaining(reader, count * 2, $"a tensor of {count:N0} float16 values");
        var halves = new Half[count];
        reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(halves.AsSpan()));
        var data = halves.Select(h => (float)h).ToArray();
        foreach (var v in data) if (!float.IsFinite(v)) throw new InvalidDataException("Non-finite parameter.");
        return data;
    }

    private static long[] ReadGaps(BinaryReader reader, long count, long size)
    {
        var indices = new long[count];
        long previous = -1;
        for (long i = 0; i < count; i++)
        {
            ulong gap = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 35) throw new InvalidDataException("Sparse position gap too long.");
                byte b = reader.ReadByte();
                gap |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) break;
            }
            if (gap >= (ulong)(size - previous - 1)) throw new InvalidDataException("Sparse positions out of range.");
            previous += (long)gap + 1;
            indices[i] = previous;
        }
        return indices;
    }

    private static long[] ReadIndexList(BinaryReader reader, long count, long size)
    {
        var positions = new int[count];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(positions.AsSpan()));
        var indices = new long[count];
        for (long i = 0; i < count; i++)
        {
            indices[i] = positions[i];
            if (indices[i] < 0 || indices[i] >= size || (i > 0 && indices[i] <= indices[i - 1]))
                throw new InvalidDataException("Sparse indices out of range or not ascending.");
        }
        return indices;
    }

    private static long[] ReadBitmap(BinaryReader reader, long count, long size)
    {
        var bitmap = new byte[BitmapBytes(size)];
        reader.BaseStream.ReadExactly(bitmap);
        long set = bitmap.Sum(b => (long)System.Numerics.BitOperations.PopCount(b));
        if (set != count) throw new InvalidDataException($"Sparse bitmap holds {set} positions, expected {count}.");
        if (size % 8 != 0 && bitmap[^1] >> (int)(size % 8) != 0) throw new InvalidDataException("Sparse bitmap has positions past the end.");
        var indices = new long[count];
        long next = 0;
        for (long position = 0; position < size; position++)
            if ((bitmap[position >> 3] & (1 << (int)(position & 7))) != 0) indices[next++] = position;
        return indices;
    }
}
