using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>The low-rank adaptive part U_t V_tᵀ of the first layer (LowRankAdaptiveRank): who gets one, what it
/// buys, and that storing, forgetting, cloning and scoring every task treat it like the rest of a task.</summary>
[TestClass]
public sealed class LowRankAdaptiveTests
{
    private static ApdHyperparameters Settings(int rank) => EngineTestData.QuickSettings with
    {
        TrainFirstTaskAdaptive = false,
        AdaptiveStartsAtZero = true,
        ProximalStrength = 0.12,
        HalfPrecisionStorage = true,
        ConsolidationInterval = 3,
        ConsolidationThreshold = 0.05,
        LowRankAdaptiveRank = rank,
        LowRankKeptEnergy = 1, // every component stored, so the shapes below are r
    };

    /// <summary>Tasks after the first get U_t [out, r] and V_t [in, r] on the first layer only, trained off zero, rounded
    /// to float16 when stored; the capacity report counts their r·(out + in) parameters as the task's adaptive part.</summary>
    [TestMethod]
    public void LaterTasksGetARankRFirstLayerPart()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, Settings(rank: 2));
        var first = network.Layers[0];
        Assert.IsNull(first.Slots["t0"].LowRank, "σ carries the first task");
        Assert.IsTrue(network.Layers.Skip(1).All(l => l.Slots.Values.All(s => s.LowRank is null)), "first layer only");
        var report = network.GetCapacity();
        foreach (var task in new[] { "t1", "t2" })
        {
            var lowRank = first.Slots[task].LowRank!;
            CollectionAssert.AreEqual(new long[] { 16, 2 }, lowRank.Left.shape);
            CollectionAssert.AreEqual(new long[] { 8, 2 }, lowRank.Right.shape);
            Assert.IsGreaterThan(0L, lowRank.Left.count_nonzero().item<long>(), "U moved off zero");
            foreach (var factor in new[] { lowRank.Left, lowRank.Right })
                Assert.IsTrue(factor.eq(SparseAdaptive.RoundToHalf(factor)).all().item<bool>(), "stored as float16 values");
            long tau = network.Layers.Sum(l => l.Slots[task].Adaptive.NonZeros);
            Assert.AreEqual(tau + 2 * (16 + 8), report.AdaptiveNonZerosPerTask[task]);
        }
    }

    /// <summary>A rank above a layer's own (here 8 inputs) is capped at it.</summary>
    [TestMethod]
    public void RankIsCappedAtTheLayersRank()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, Settings(rank: 32));
        Assert.AreEqual(8L, network.Layers[0].Slots["t1"].LowRank!.Rank);
    }

    /// <summary>With LowRankAdaptiveLayers = 2 the second layer gets its own U_t [8, r], V_t [16, r] too.</summary>
    [TestMethod]
    public void TheFirstNLayersGetAPart()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, Settings(rank: 2) with { LowRankAdaptiveLayers = 2 });
        var second = network.Layers[1].Slots["t1"].LowRank!;
        CollectionAssert.AreEqual(new long[] { 8, 2 }, second.Left.shape);
        CollectionAssert.AreEqual(new long[] { 16, 2 }, second.Right.shape);
        Assert.IsNotNull(network.Layers[0].Slots["t1"].LowRank);
        Assert.IsTrue(network.Layers.All(l => l.Slots["t0"].LowRank is null));
    }

    /// <summary>What the part buys: a task whose inputs are permuted needs a dense change of the first layer. With σ
    /// held by a strong retroactive term and a τ that can hardly grow, a rank-4 part learns the permuted task far
    /// better than masks and τ alone.</summary>
    [TestMethod]
    public void ALowRankPartLearnsAPermutedTask()
    {
        double PermutedAccuracy(int rank)
        {
            var h = Settings(rank) with { ProximalStrength = 5, NumberOfEpochs = 8, ConsolidationInterval = 100 };
            // Four first-layer units: after the first task they read x[0], and nothing but τ or U Vᵀ can make them read x[7].
            using var network = ApdNetwork.Create(new ApdArchitecture(8, [4, 4], [], null), CPU, 1);
            var (x, y) = EngineTestData.Task(100, 8, n: 400, direction: 0);
            using (x) using (y) ApdLearner.LearnTask(network, "original", 2, x, y, h, null, CancellationToken.None);
            // The same rule on reversed and sign-flipped features: x' = −x[:, reversed] ⇒ label of x'' depends on −x'[7].
            var (xp, yp) = EngineTestData.Task(101, 8, n: 400, direction: 0);
            using var permuted = -xp.flip(1);
            using (xp) using (yp)
            {
                ApdLearner.LearnTask(network, "permuted", 2, permuted, yp, h, null, CancellationToken.None);
                return EngineTestData.Accuracy(network, "permuted", permuted, yp);
            }
        }
        double without = PermutedAccuracy(0), with = PermutedAccuracy(4);
        Assert.IsGreaterThan(without + 0.1, with, $"rank 4: {with:P1}, none: {without:P1}");
        Assert.IsGreaterThan(0.9, with);
    }

    /// <summary>Saved and loaded (network format 5), every task predicts bit-identically and the bytes round-trip; a
    /// clone serialises to the same bytes.</summary>
    [TestMethod]
    public void SaveLoadRoundTripIsBitExact()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, Settings(rank: 3));
        var bytes = EngineTestData.Serialize(network);
        using var loaded = ApdNetwork.Load(new BinaryReader(new MemoryStream(bytes)), CPU);
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(loaded));
        Assert.AreEqual(3L, loaded.Layers[0].Slots["t2"].LowRank!.Rank);
        var (x, _) = EngineTestData.Task(9);
        using (x)
            foreach (var task in network.Tasks)
                CollectionAssert.AreEqual(EngineTestData.Logits(network, task, x), EngineTestData.Logits(loaded, task, x), task);
        using var clone = network.Clone();
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(clone));
        Assert.IsLessThanOrEqualTo(network.SaveSizeBound(), (long)bytes.Length, "SaveSizeBound bounds the bytes");
    }

    /// <summary>On a convolution layer U_t is [channels, r] and V_t [in-channels · k · k, r], reshaped to the kernel; such
    /// a network saves and loads bit-exactly too.</summary>
    [TestMethod]
    public void ConvolutionLayersGetAPartShapedLikeTheirKernel()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallCnn, 2, Settings(rank: 2));
        var lowRank = network.Layers[0].Slots["t1"].LowRank!;
        CollectionAssert.AreEqual(new long[] { 3, 2 }, lowRank.Left.shape);
        CollectionAssert.AreEqual(new long[] { 9, 2 }, lowRank.Right.shape);
        using (var dense = lowRank.ToDense(network.Layers[0].WeightShape))
            CollectionAssert.AreEqual(new long[] { 3, 1, 3, 3 }, dense.shape);
        var bytes = EngineTestData.Serialize(network);
        using var loaded = ApdNetwork.Load(new BinaryReader(new MemoryStream(bytes)), CPU);
        var (x, _) = EngineTestData.Task(9, 64);
        using (x)
            foreach (var task in network.Tasks)
                CollectionAssert.AreEqual(EngineTestData.Logits(network, task, x), EngineTestData.Logits(loaded, task, x), task);
    }

    /// <summary>Forgetting a task with a low-rank part leaves every other task bit-identical; training a clone leaves
    /// the original bit-identical.</summary>
    [TestMethod]
    public void ForgettingAndTrainingACloneChangeNoOtherTask()
    {
        var h = Settings(rank: 2);
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        var (x, _) = EngineTestData.Task(9);
        using (x)
        {
            var before = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
            using (var clone = network.Clone())
            {
                var (xn, yn) = EngineTestData.Task(12);
                using (xn) using (yn) ApdLearner.LearnTask(clone, "t4", 2, xn, yn, h, null, CancellationToken.None);
                Assert.IsNotNull(clone.Layers[0].Slots["t4"].LowRank);
            }
            foreach (var task in network.Tasks)
                CollectionAssert.AreEqual(before[task], EngineTestData.Logits(network, task, x), $"{task} after training a clone");
            foreach (var forgotten in new[] { "t2", "t0" })
            {
                network.Forget(forgotten);
                foreach (var task in network.Tasks)
                    CollectionAssert.AreEqual(before[task], EngineTestData.Logits(network, task, x), $"{task} after forgetting {forgotten}");
            }
        }
    }

    /// <summary>Scoring every task at once adds (x V_t) U_tᵀ to the factored first layer: the same logits as per task.</summary>
    [TestMethod]
    public void ForwardAllMatchesForwardPerTask()
    {
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, Settings(rank: 2));
        var (x, _) = EngineTestData.Task(7, n: 50);
        using (x) EngineTestData.AssertForwardAllMatchesForward(network, x);
    }

    /// <summary>Truncation keeps the fewest leading singular components with the asked share of ‖U Vᵀ‖²: a product of
    /// rank 2 padded to r = 4 with a tiny third direction keeps 2 at 0.999 and is the same matrix to that share; at 1
    /// the factors stay as trained; U = 0 stores nothing.</summary>
    [TestMethod]
    public void TruncationKeepsTheLeadingComponents()
    {
        using var generator = new Generator(4);
        using var scope = NewDisposeScope();
        var left = randn([6, 4], generator: generator);
        var right = randn([10, 4], generator: generator);
        left[.., 3] = 0;                        // a fourth component that is exactly 0
        right[.., 2] = right[.., 2] * 1e-3;     // a third with ~1e-6 of the energy: two components matter
        var product = left.mm(right.t());

        var (keptLeft, keptRight) = LowRankAdaptive.Truncated(left, right, 0.999)!.Value;
        Assert.AreEqual(2L, keptLeft.shape[1]);
        Assert.AreEqual(2L, keptRight.shape[1]);
        var error = (keptLeft.mm(keptRight.t()) - product).square().sum().item<float>() / product.square().sum().item<float>();
        Assert.IsLessThan(1e-3f, error);

        var (allLeft, allRight) = LowRankAdaptive.Truncated(left, right, 1)!.Value;
        Assert.IsTrue(allLeft.eq(left).all().item<bool>() && allRight.eq(right).all().item<bool>(), "1 keeps the trained factors");
        Assert.IsNull(LowRankAdaptive.Truncated(zeros([6, 4]), right, 0.999));
    }

    /// <summary>Each group steps at its own learning rate: Adam's first step moves every element with a gradient by the
    /// learning rate, so the faster group moves exactly its rate, 30 × as far.</summary>
    [TestMethod]
    public void FlatAdamStepsEachGroupAtItsRate()
    {
        using var slow = new global::TorchSharp.Modules.Parameter(zeros(4));
        using var fast = new global::TorchSharp.Modules.Parameter(zeros(3));
        using var adam = new FlatAdam([[slow], [fast]]);
        adam.LearningRates[0] = 1e-3;
        adam.LearningRates[1] = 3e-2;
        using (var loss = (slow * tensor(new float[] { 1, -2, 3, -4 })).sum() + (fast * tensor(new float[] { 5, -6, 7 })).sum())
            loss.backward();
        adam.Step();
        var slowStep = slow.data<float>().ToArray();
        var fastStep = fast.data<float>().ToArray();
        for (int i = 0; i < 4; i++) Assert.AreEqual(1e-3, Math.Abs(slowStep[i]), 1e-8);
        for (int i = 0; i < 3; i++) Assert.AreEqual(3e-2, Math.Abs(fastStep[i]), 1e-7);
        Assert.IsLessThan(0f, slowStep[0], "against the gradient");
    }
}
