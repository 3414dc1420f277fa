using Microsoft.ML;
using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(ApdTransformer), null, typeof(SignatureLoadModel), "APD Transformer", ApdTransformer.LoaderSignature)]

namespace Microsoft.ML.Apd;

// Saving into and loading from ML.NET's model .zip (ICanSaveModel and the SignatureLoadModel loader). The ML.NET
// entry holds only the version info; everything else is in one binary stream wrapped by ApdModelFormat (magic, format
// version, length, SHA-256), read back from the stream after the checksum is verified (never buffered whole first).
// Payload by format version:
//   3 (written): ScoringColumns (feature, label, task id, score, predicted label, predicted task, task confidence),
//      bool require task id, bool+string selected task, LabelColumnType, int task count, per task (in learned order):
//      string name + TaskLabelSet, int64 length + ApdNetwork.Save bytes (network format 5; formats 4, 3 and 2 are read).
//   1 (read): string feature column, string label column, string task id column, bool+string selected task,
//      LabelColumnType, int task count, per task: string name + TaskLabelSet, bool+hyperparameters of the last Fit
//      (15 values, skipped: nothing reads them), int64 length + ApdNetwork.Save bytes (network format 2). Outputs get
//      the default names, and task inference is on.
public sealed partial class ApdTransformer
{
    /// <summary>The loader signature under which ML.NET finds <see cref="ApdTransformer"/> in a saved model.</summary>
    public const string LoaderSignature = "ApdTransformer";
    private const string PayloadEntry = "ApdModel.bin";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "APD TRNS",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ApdTransformer).Assembly.FullName);

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        byte[] payload = SerializePayload();
        ctx.SaveBinaryStream(PayloadEntry, writer =>
        {
            writer.Flush();
            ApdModelFormat.Write(writer.BaseStream, payload);
        });
    }

    // Called by ML.NET through reflection (SignatureLoadModel). The check runs before Load is compiled.
    private static ApdTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        MLNetInternal.EnsureAvailable();
        TorchSharpLoader.Report(env);
        return Load(env, ctx);
    }

    private static ApdTransformer Load(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        ApdTransformer? model = null;
        if (!ctx.TryLoadBinaryStream(PayloadEntry, reader =>
            {
                using var payload = ApdModelFormat.OpenVerified(reader.BaseStream, out int version);
                model = Deserialize(env, payload, version);
            }))
            throw new InvalidDataException($"The saved APD model has no '{PayloadEntry}' entry.");
        return model!;
    }

    /// <summary>Bytes of the payload <see cref="SerializePayload"/> writes, measured without keeping them: <c>Fit</c>
    /// checks it against <see cref="ApdLimits.MaxModelBytes"/> so that every model it returns can be saved.</summary>
    internal long PayloadSize()
    {
        using var counter = new ByteCounter();
        using (var w = new BinaryWriter(counter, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            WriteDescription(w);
            w.Write(0L);
            Network.Save(w);
        }
        return counter.Length;
    }

    /// <summary>At least <see cref="PayloadSize"/>, without serialising the network
    /// (<see cref="ApdNetwork.SaveSizeBound"/>): Fit measures exactly only when this bound exceeds the limit.</summary>
    internal long PayloadSizeBound()
    {
        using var counter = new ByteCounter();
        using (var w = new BinaryWriter(counter, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            WriteDescription(w);
            w.Write(0L);
        }
        return counter.Length + Network.SaveSizeBound();
    }

    internal byte[] SerializePayload()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            WriteDescription(w);
            using var network = new MemoryStream();
            using (var nw = new BinaryWriter(network, System.Text.Encoding.UTF8, leaveOpen: true))
                Network.Save(nw);
            w.Write(network.Length);
            w.Write(network.GetBuffer(), 0, (int)network.Length);
        }
        return stream.ToArray();
    }

    /// <summary>Everything of the payload before the network: columns, task id rule, label type, tasks and their label sets.</summary>
    private void WriteDescription(BinaryWriter w)
    {
        Columns.Write(w);
        w.Write(RequireTaskId);
        w.Write(SelectedTask is not null);
        if (SelectedTask is not null) w.Write(SelectedTask);
        LabelType.Write(w);
        var tasks = Tasks;
        w.Write(tasks.Count);
        foreach (string task in tasks)
        {
            w.Write(task);
            LabelSets[task].Write(w);
        }
    }

    /// <summary>Reads a payload from a seekable stream (see <see cref="ApdModelFormat.OpenVerified"/>); every count is
    /// checked against <see cref="ApdLimits"/> and the bytes that remain before anything is allocated.</summary>
    internal static ApdTransformer Deserialize(IHostEnvironment env, Stream payload, int version = ApdModelFormat.CurrentVersion)
    {
        using var r = new BinaryReader(payload, System.Text.Encoding.UTF8, leaveOpen: true);
        return Deserialize(env, r, version);
    }

    /// <summary>As above, from a reader over the payload (tests pass one that records where each field lies).</summary>
    internal static ApdTransformer Deserialize(IHostEnvironment env, BinaryReader r, int version = ApdModelFormat.CurrentVersion)
    {
        var payload = r.BaseStream;
        try
        {
            ScoringColumns columns;
            bool requireTaskId = false;
            if (version == 1)
                columns = ScoringColumns.WithDefaultOutputs(r.ReadString(), r.ReadString(), r.ReadString());
            else
            {
                columns = ScoringColumns.Read(r);
                requireTaskId = r.ReadBoolean();
            }
            string? selected = r.ReadBoolean() ? r.ReadString() : null;
            var labelType = LabelColumnType.Read(r);
            int count = r.ReadInt32();
            if (count < 0 || count > ApdLimits.MaxTasks) throw new InvalidDataException($"Invalid task count {count}.");
            var labelSets = new Dictionary<string, TaskLabelSet>();
            var order = new List<string>();
            for (int i = 0; i < count; i++)
            {
                string task = r.ReadString();
                if (labelSets.ContainsKey(task)) throw new InvalidDataException($"Duplicate task '{task}'.");
                labelSets.Add(task, TaskLabelSet.Read(r, labelType));
                order.Add(task);
            }
            if (version == 1 && r.ReadBoolean()) SkipVersion1Hyperparameters(r);
            long length = r.ReadInt64();
            if (length < 0 || length > payload.Length - payload.Position)
                throw new InvalidDataException($"Invalid network length {length}.");

            var host = env.Register(nameof(ApdTransformer));
            using var ch = host.Start("Loading");
            var device = DeviceSelection.Select(env, ch);
            var network = ApdNetwork.Load(r, device);
            try
            {
                if (!network.Tasks.SequenceEqual(order))
                    throw new InvalidDataException("The saved network's tasks do not match the saved label sets.");
                foreach (string task in order)
                    if (network.ClassCount(task) != labelSets[task].Count)
                        throw new InvalidDataException($"Task '{task}': the network has {network.ClassCount(task)} classes, its label set {labelSets[task].Count}.");
                return new ApdTransformer(env, new SharedNetwork(network), labelType, labelSets, columns, requireTaskId, selected);
            }
            catch
            {
                network.Dispose();
                throw;
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The APD model payload is truncated.", e);
        }
    }

    // Format 1 saved the last Fit's hyperparameters, which nothing read: 7 int32 and 8 double values.
    private static void SkipVersion1Hyperparameters(BinaryReader r)
    {
        const int size = 7 * sizeof(int) + 8 * sizeof(double);
        if (r.ReadBytes(size).Length != size) throw new EndOfStreamException();
    }

    /// <summary>A write-only stream that keeps nothing and counts the bytes written to it.</summary>
    private sealed class ByteCounter : Stream
    {
        private long _length;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
        public override void WriteByte(byte value) => _length++;
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
