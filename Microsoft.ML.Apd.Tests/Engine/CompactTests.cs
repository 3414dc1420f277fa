using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>The compactness levers: no τ on the first task, zero-started τ, proximal shrinking, mask-logit start,
/// half-precision storage, and their consistency with the closed-form retroactive update.</summary>
[TestClass]
public sealed class CompactTests
{
    // Wide enough that masks and biases (one per output unit) are a small part of the network, as in real models.
    private static readonly ApdArchitecture Mlp = new(64, [64, 32], [], null);

    private static ApdNetwork TrainOne(ApdHyperparameters h)
    {
        var network = ApdNetwork.Create(Mlp, CPU, 1);
        var (x, y) = EngineTestData.Task(100, Mlp.InputSize);
        using (x) using (y) ApdLearner.TrainTask(network, "t0", 2, x, y, h, null, CancellationToken.None);
        return network;
    }

    /// <summary>Without a τ of its own, a task stores one network plus a mask and a bias per unit, however short its
    /// training (the authors' dense-started τ_1 is not sparse yet after one epoch), and σ and the mask learn it.</summary>
    [TestMethod]
    public void FirstTaskWithoutAdaptiveStoresOneNetwork()
    {
        var h = EngineTestData.QuickSettings with { TrainFirstTaskAdaptive = false };
        var (x, y) = EngineTestData.Task(100, Mlp.InputSize);
        using (x) using (y)
            foreach (int epochs in new[] { 1, 4 })
            {
                using var compact = TrainOne(h with { NumberOfEpochs = epochs });
                var report = compact.GetCapacity();
                Assert.AreEqual(0L, report.AdaptiveNonZerosPerTask["t0"]);
                Assert.IsLessThanOrEqualTo(1.05, report.Capacity, $"{epochs} epochs");
                if (epochs > 1) Assert.IsGreaterThan(0.95, EngineTestData.Accuracy(compact, "t0", x, y), "σ and the mask carry task 1");
            }
        using var paper = TrainOne(EngineTestData.QuickSettings with { NumberOfEpochs = 1 });
        Assert.IsGreaterThan(1.5, paper.GetCapacity().Capacity, "the authors' τ_1 after one epoch");
    }

    /// <summary>A new task's τ starts at zero and its masks at the given logit; the first task's τ is no parameter.</summary>
    [TestMethod]
    public void SessionStartsAdaptiveAtZeroAndMasksAtTheGivenLogit()
    {
        var h = EngineTestData.QuickSettings with { TrainFirstTaskAdaptive = false, AdaptiveStartsAtZero = true, InitialMaskLogit = 3 };
        using var empty = ApdNetwork.Create(Mlp, CPU, 1);
        using var generator = new Generator(3);
        using (var first = new TaskTrainingSession(empty, "t0", 2, h, generator))
        {
            Assert.IsFalse(first.TrainableParameters.Any(p => first.Adaptive.Any(a => ReferenceEquals(p, a))), "τ_1 is not trained");
            Assert.IsTrue(first.Adaptive.All(a => a.count_nonzero().item<long>() == 0));
        }
        using var network = TrainOne(h);
        using var second = new TaskTrainingSession(network, "t1", 2, h, generator);
        Assert.IsTrue(second.TrainableParameters.Any(p => ReferenceEquals(p, second.Adaptive[0])), "later τ_t are trained");
        Assert.IsTrue(second.Adaptive.All(a => a.count_nonzero().item<long>() == 0));
        Assert.IsTrue(second.MaskLogits.All(v => v.eq(3).all().item<bool>()));
    }

    [TestMethod]
    public void ProximalStepIsTheSoftThreshold()
    {
        using var p = new global::TorchSharp.Modules.Parameter(tensor(new float[] { -0.3f, -0.05f, 0, 0.1f, 0.3f }));
        ApdObjective.ShrinkProximally([p], 0.1);
        var shrunk = p.data<float>().ToArray();
        CollectionAssert.AreEqual(new float[] { 0, 0, 0 }, shrunk[1..4], "exact zeros within the shrink");
        Assert.AreEqual(-0.2f, shrunk[0], 1e-7f);
        Assert.AreEqual(0.2f, shrunk[4], 1e-7f);
    }

    /// <summary>With proximal shrinking, most of a zero-started τ_t is exactly zero after 16 steps; without it, Adam
    /// moves nearly every element off zero (its first step moves every element with a gradient by the learning rate).</summary>
    [TestMethod]
    public void ProximalStepsLeaveExactZeros()
    {
        double ZeroFraction(double rho)
        {
            var h = EngineTestData.QuickSettings with { AdaptiveStartsAtZero = true, ProximalStrength = rho, NumberOfEpochs = 2 };
            using var network = TrainOne(h);
            var (x, y) = EngineTestData.Task(101, Mlp.InputSize);
            using (x) using (y)
            using (var generator = new Generator(3))
            using (var session = new TaskTrainingSession(network, "t1", 2, h, generator))
            using (var optimizer = new FlatAdam(session.TrainableParameters.ToList(), h.LearningRate))
            {
                double fraction = 0;
                for (int step = 0; step < 16; step++)
                {
                    using var scope = NewDisposeScope();
                    var rows = arange(step % 8 * 25, step % 8 * 25 + 25);
                    session.Step(optimizer, x.index_select(0, rows), y.index_select(0, rows));
                    long zeros = session.Adaptive.Sum(a => a.numel() - a.count_nonzero().item<long>());
                    fraction = (double)zeros / session.Adaptive.Sum(a => a.numel());
                }
                return fraction;
            }
        }
        Assert.IsGreaterThan(0.5, ZeroFraction(0.5), "ρ = 0.5: most of τ is exactly 0");
        Assert.IsLessThan(0.1, ZeroFraction(0), "ρ = 0: little of τ stays exactly 0");
    }

    /// <summary>Fast's closed form minimises the L1 the proximal steps add: with ρ, its refreshed earlier τ_i are the
    /// minimiser of the dense reference's term with λ₁ + ρ/GradientScale (its τ-gradient is 0 at every non-zero), and
    /// the σ-gradients of the two terms are equal.</summary>
    [TestMethod]
    public void FastSolvesTheObjectiveWithTheProximalShare()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 2, SparsityStrength = 1e-3 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        var withProx = h with { ProximalStrength = 0.1, RetroactiveStrength = 1 };
        var objective = withProx with { SparsityStrength = h.SparsityStrength + 0.1 / h.GradientScale, ProximalStrength = 0 };
        using var fast = new FastRetroactiveUpdate(network, withProx);
        using var exact = new ExactRetroactiveUpdate(network, objective);
        using var scope = NewDisposeScope();
        using var generator = new Generator(9);
        var shared = network.Layers.Select(l => new global::TorchSharp.Modules.Parameter((l.Shared + 0.05 * randn(l.WeightShape, generator: generator)).detach())).ToList();
        fast.Refresh(shared);
        using (no_grad())
            for (int l = 0; l < shared.Count; l++) exact.Parameters[l].copy_(fast.Adaptive(l));
        exact.Penalty(shared).backward();
        var exactGradients = shared.Select(s => s.grad!.clone()).ToList();
        foreach (var s in shared) s.grad!.zero_();
        fast.AddGradients(shared, 1);
        for (int l = 0; l < shared.Count; l++)
        {
            var adaptive = exact.Parameters[l];
            Assert.IsGreaterThan(0L, adaptive.count_nonzero().item<long>());
            var atNonZeros = adaptive.grad!.masked_select(adaptive.detach().ne(0));
            Assert.IsLessThan(1e-4f * (float)objective.SparsityStrength, atNonZeros.abs().max().item<float>(), $"τ gradient at non-zeros, layer {l}");
            float scale = exactGradients[l].abs().max().item<float>();
            Assert.IsLessThan(1e-4f * scale, (shared[l].grad! - exactGradients[l]).abs().max().item<float>(), $"σ gradient, layer {l}");
        }
    }

    /// <summary>Half-precision storage: every stored τ and σ̃ value is a float16 (after training, retroactive updates
    /// and a consolidation), the saved bytes are smaller, and loading gives back exactly the trained network.</summary>
    [TestMethod]
    public void HalfPrecisionStorageIsWhatTheNetworkUses()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 3, SparsityStrength = 1e-4 };
        using var full = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        using var half = EngineTestData.Train(EngineTestData.SmallMlp, 3, h with { HalfPrecisionStorage = true });
        long values = 0;
        foreach (var layer in half.Layers)
            foreach (var sparse in layer.Slots.Values.Select(s => s.Adaptive).Concat(layer.LocallyShared.Values))
            {
                var v = sparse.Values.data<float>().ToArray();
                values += v.Length;
                Assert.IsTrue(v.All(x => (float)(Half)x == x), "every stored value is a float16");
            }
        Assert.IsGreaterThan(0L, values);
        Assert.IsGreaterThan(0, half.Layers.Sum(l => l.LocallyShared.Count), "a consolidation ran");
        var bytes = EngineTestData.Serialize(half);
        Assert.IsLessThan(EngineTestData.Serialize(full).Length, bytes.Length);
        using var loaded = ApdNetwork.Load(new BinaryReader(new MemoryStream(bytes)), CPU);
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(loaded));
        var (x, _) = EngineTestData.Task(200);
        using (x)
            foreach (var task in half.Tasks)
                CollectionAssert.AreEqual(EngineTestData.Logits(half, task, x), EngineTestData.Logits(loaded, task, x), task);
    }
    /// <summary>Rounding to float16 as <see cref="Half"/> does (ties to even), except for values beyond float16's range,
    /// which stay as they are, with and without such values in the tensor (a tensor without them skips the
    /// elementwise choice); NaN stays NaN.</summary>
    [TestMethod]
    public void RoundToHalfRoundsLikeHalfAndKeepsWhatItCannotHold()
    {
        float[] inRange = [0f, -0f, 1.0001f, -3.14159f, 1e-8f, 65504f, -65504f, 0.1f];
        float[] beyond = [65505f, -70000f, 3e38f, float.PositiveInfinity];
        static float Expected(float x) => Math.Abs(x) <= 65504f ? (float)(Half)x : x;
        foreach (var values in new[] { inRange, inRange.Concat(beyond).ToArray(), inRange.Append(float.NaN).ToArray(), Array.Empty<float>() })
        {
            using var scope = NewDisposeScope();
            var rounded = SparseAdaptive.RoundToHalf(tensor(values)).data<float>().ToArray();
            Assert.AreEqual(values.Length, rounded.Length);
            for (int i = 0; i < values.Length; i++)
                if (float.IsNaN(values[i])) Assert.IsTrue(float.IsNaN(rounded[i]));
                else Assert.AreEqual(BitConverter.SingleToInt32Bits(Expected(values[i])), BitConverter.SingleToInt32Bits(rounded[i]), $"{values[i]}");
        }
    }
}
