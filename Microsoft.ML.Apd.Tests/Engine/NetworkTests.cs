using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class NetworkTests
{
    [TestMethod]
    public void ForgettingIsBitExactForOtherTasks()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 4, ConsolidationThreshold = 0.05 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        Assert.IsTrue(network.Layers.Any(l => l.LocallyShared.Count > 0), "clusters exist, so forgetting touches groups");
        var (x, _) = EngineTestData.Task(9);
        using (x)
        {
            var before = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
            foreach (var forgotten in new[] { "t1", "t3", "t0" })
            {
                network.Forget(forgotten);
                Assert.IsFalse(network.Tasks.Contains(forgotten));
                Assert.ThrowsExactly<KeyNotFoundException>(() => network.Forward(x, forgotten));
                foreach (var task in network.Tasks)
                    CollectionAssert.AreEqual(before[task], EngineTestData.Logits(network, task, x), $"{task} after forgetting {forgotten}");
            }
            Assert.IsTrue(network.Layers.All(l => l.LocallyShared.Count == 0 || network.Tasks.Count > 0));
            // Learning goes on after forgetting.
            var (xn, yn) = EngineTestData.Task(11);
            using (xn) using (yn) ApdLearner.LearnTask(network, "new", 2, xn, yn, h, null, CancellationToken.None);
            CollectionAssert.AreEqual(new[] { "t2", "new" }, network.Tasks.ToArray());
        }
    }

    [TestMethod]
    public void CapacityMatchesHandComputedExample()
    {
        using var network = ApdNetwork.Create(new ApdArchitecture(3, [2], [], null), CPU, 1);
        var layer = network.Layers[0]; // σ [2, 3]: 6 non-zeros (uniform init)
        TaskSlot Slot(float[] tau, int? group) => new(tensor(new float[] { 1, 1 }), tensor(new float[] { 0, 2 }), SparseAdaptive.FromDense(tensor(tau, [2, 3]), 0), group);
        network.AddTask("a", new TaskHead(ones(3, 2), zeros(3)), [Slot([1, 0, 0, 0, 0, 2], 0)]);
        network.AddTask("b", new TaskHead(ones(2, 2), ones(2)), [Slot([0, 0, 0, 0, 0, 0], 0)]);
        layer.LocallyShared[0] = SparseAdaptive.FromDense(tensor(new float[] { 0, 3, 0, 0, 0, 0 }, [2, 3]), 0);
        var report = network.GetCapacity();
        var fc = report.Layers[0];
        Assert.AreEqual(6L, fc.Shared);
        Assert.AreEqual(4L, fc.Masks);
        Assert.AreEqual(2L, fc.Biases);       // the zero biases are not stored non-zeros
        Assert.AreEqual(2L, fc.Adaptive);
        Assert.AreEqual(1L, fc.LocallyShared);
        Assert.AreEqual(6L + 2 + 4, report.Layers[1].Heads); // head a: 6 + 0, head b: 4 + 2
        Assert.AreEqual(15L + 12, report.StoredParameters);
        // One plain 3-2 network (6 + 2) with a 3-class head (6 + 3) and a 2-class head (4 + 2).
        Assert.AreEqual(8L + 9 + 6, report.BaseNetworkParameters);
        Assert.AreEqual(27.0 / 23, report.Capacity, 1e-12);
        Assert.AreEqual(2L, report.AdaptiveNonZerosPerTask["a"]);
        Assert.AreEqual(0L, report.AdaptiveNonZerosPerTask["b"]);
        Assert.HasCount(1, report.ClusterGroups);
        CollectionAssert.AreEqual(new[] { "a", "b" }, report.ClusterGroups[0].ToArray());
    }

    [TestMethod]
    public void SaveLoadRoundTripIsBitExact()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 2, NumberOfEpochs = 2 };
        using var network = EngineTestData.Train(EngineTestData.SmallCnn, 3, h);
        var bytes = EngineTestData.Serialize(network);
        using var loaded = ApdNetwork.Load(new BinaryReader(new MemoryStream(bytes)), CPU);
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(loaded));
        Assert.AreEqual(network.ConsolidationCount, loaded.ConsolidationCount);
        Assert.AreEqual(network.LearnedTaskCount, loaded.LearnedTaskCount);
        CollectionAssert.AreEqual(network.Tasks.ToArray(), loaded.Tasks.ToArray());
        var (x, _) = EngineTestData.Task(1, 64);
        using (x)
            foreach (var task in network.Tasks)
                CollectionAssert.AreEqual(EngineTestData.Logits(network, task, x), EngineTestData.Logits(loaded, task, x));
        using var clone = network.Clone();
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(clone));
    }

    /// <summary>τ's positions are stored as varint gaps (1 byte per non-zero while gaps stay under 128) when sparse and
    /// as a bitmap of the dense shape (1 bit per element) when that is smaller; values as float16 when every value is
    /// one (half-precision storage rounds them so), float32 otherwise. All round-trip exactly and take the bytes they
    /// promise.</summary>
    [TestMethod]
    [DataRow(0.02, false, DisplayName = "2 % non-zeros: gaps, float32")]
    [DataRow(0.02, true, DisplayName = "2 % non-zeros: gaps, float16")]
    [DataRow(0.30, false, DisplayName = "30 % non-zeros: bitmap, float32")]
    [DataRow(0.30, true, DisplayName = "30 % non-zeros: bitmap, float16")]
    public void SparseAdaptiveRoundTripsInTheSmallerEncoding(double density, bool halfPrecision)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        long[] shape = [64, 100];
        var dense = where(rand(shape, generator: generator) < density, randn(shape, generator: generator), zeros(shape));
        using var sparse = SparseAdaptive.FromDense(dense, 0, halfPrecision);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ApdNetwork.WriteSparse(writer, sparse);

        var indices = sparse.Indices.data<long>().ToArray();
        long gapBytes = indices.Select((index, i) => index - (i == 0 ? -1 : indices[i - 1]) - 1 < 128 ? 1L : 2L).Sum();
        long positions = density < 0.1 ? gapBytes : 6400 / 8;
        Assert.AreEqual(8 + 1 + positions + 1 + (halfPrecision ? 2 : 4) * sparse.NonZeros, stream.Length);
        stream.Position = 0;
        using var read = ApdNetwork.ReadSparse(new BinaryReader(stream), shape, CPU);
        CollectionAssert.AreEqual(indices, read.Indices.data<long>().ToArray());
        CollectionAssert.AreEqual(sparse.Values.data<float>().ToArray(), read.Values.data<float>().ToArray());
        if (halfPrecision)
        {
            var original = dense.reshape(-1).index_select(0, sparse.Indices);
            // Nearest float16: 11 significant bits (half a unit in the last place), or 2^-25 among the subnormals.
            float beyond = ((sparse.Values - original).abs() - original.abs() / 2048).max().item<float>();
            Assert.IsLessThanOrEqualTo(MathF.Pow(2, -25), beyond, "rounded to the nearest float16");
        }
    }

    [TestMethod]
    public void MalformedInputThrowsInvalidData()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, h);
        var bytes = EngineTestData.Serialize(network);
        void Expect(byte[] data, string why)
            => Assert.ThrowsExactly<InvalidDataException>(() => ApdNetwork.Load(new BinaryReader(new MemoryStream(data)), CPU).Dispose(), why);
        Expect([], "empty");
        Expect(bytes[..^1], "truncated by one byte");
        Expect(bytes[..(bytes.Length / 2)], "truncated in the middle");
        var badMagic = (byte[])bytes.Clone(); badMagic[0] ^= 0xFF; Expect(badMagic, "magic");
        var hugeInput = (byte[])bytes.Clone(); BitConverter.GetBytes(int.MaxValue).CopyTo(hugeInput, 8); Expect(hugeInput, "huge input size");
        var negativeHidden = (byte[])bytes.Clone(); BitConverter.GetBytes(-5).CopyTo(negativeHidden, 12); Expect(negativeHidden, "negative count");
        var hugeHidden = (byte[])bytes.Clone(); BitConverter.GetBytes(1 << 20).CopyTo(hugeHidden, 16); Expect(hugeHidden, "huge hidden layer");
        // Random corruption anywhere must never crash natively.
        var random = new Random(1);
        for (int i = 0; i < 200; i++)
        {
            var corrupt = (byte[])bytes.Clone();
            int at = random.Next(corrupt.Length);
            corrupt[at] = (byte)random.Next(256);
            try { ApdNetwork.Load(new BinaryReader(new MemoryStream(corrupt)), CPU).Dispose(); }
            catch (InvalidDataException) { }
        }
    }

    /// <summary>Scoring every task at once (the first layer factored as (x σᵀ) ⊙ m_t + x A_tᵀ) computes what Forward
    /// computes per task, with locally-shared σ̃ after consolidation, for MLPs and (by fallback) CNNs.</summary>
    [TestMethod]
    public void ForwardAllMatchesForwardPerTask()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 4, ConsolidationThreshold = 0.05 };
        foreach (var architecture in new[] { EngineTestData.SmallMlp, EngineTestData.SmallCnn })
        {
            using var network = EngineTestData.Train(architecture, 4, h);
            Assert.IsTrue(network.Layers.Any(l => l.LocallyShared.Count > 0), "σ̃ exists");
            var (x, _) = EngineTestData.Task(7, architecture.InputSize, n: 50);
            using (x) EngineTestData.AssertForwardAllMatchesForward(network, x);
        }
    }
}
