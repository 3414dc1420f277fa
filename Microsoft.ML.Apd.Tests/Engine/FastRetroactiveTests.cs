using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Apd.Samples;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class FastRetroactiveTests
{
    /// <summary>
    /// After σ has moved, Fast's term and the σ-gradient it adds equal the dense reference's when the reference's
    /// τ_i are at Fast's closed-form minimiser — with dense supports (λ₁ = 0 while training keeps every element) and
    /// with the sparse supports real training leaves, fully-connected and convolutional. And those τ_i are the
    /// minimiser: the reference's gradient with respect to every non-zero τ_i element is 0.
    /// </summary>
    [TestMethod]
    [DataRow(false, true)]
    [DataRow(true, true)]
    [DataRow(false, false)]
    [DataRow(true, false)]
    public void FastEqualsExactWithEarlierAdaptiveAtItsMinimiser(bool convolutional, bool denseSupports)
    {
        var architecture = convolutional ? EngineTestData.SmallCnn : EngineTestData.SmallMlp;
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 2, NumberOfEpochs = 2 };
        if (denseSupports) h = h with { SparsityStrength = 0 };
        using var network = EngineTestData.Train(architecture, 3, h);
        // From here on λ₁ = 0.01, λ₂ = 1: the identity holds for any λ, and with κ = λ₁/2λ₂ = 0.005 the reference's
        // residual θ_i − θ_i* (at most κ at the minimiser) is not lost to float32 cancellation in θ_i − θ_i*.
        h = h with { SparsityStrength = 1e-2, RetroactiveStrength = 1 };
        using var exact = new ExactRetroactiveUpdate(network, h);
        using var fast = new FastRetroactiveUpdate(network, h);
        using var scope = NewDisposeScope();
        using var generator = new Generator(9);
        var shared = network.Layers.Select(l => new global::TorchSharp.Modules.Parameter((l.Shared + 0.02 * randn(l.WeightShape, generator: generator)).detach())).ToList();
        fast.Refresh(shared);
        using (no_grad())
            for (int l = 0; l < shared.Count; l++) exact.Parameters[l].copy_(fast.Adaptive(l));

        var exactPenalty = exact.Penalty(shared);
        exactPenalty.backward();
        var exactGradients = shared.Select(s => s.grad!.clone()).ToList();
        foreach (var s in shared) s.grad!.zero_();
        float fastPenalty = fast.Penalty(shared).item<float>();
        fast.AddGradients(shared, 1);

        Assert.IsGreaterThan(0f, exactPenalty.item<float>());
        Assert.AreEqual(exactPenalty.item<float>(), fastPenalty, 1e-5 * exactPenalty.item<float>());
        for (int l = 0; l < shared.Count; l++)
        {
            float scale = exactGradients[l].abs().max().item<float>();
            Assert.IsLessThan(1e-4f * scale, (shared[l].grad! - exactGradients[l]).abs().max().item<float>(), $"σ gradient, layer {l}");
            var adaptive = exact.Parameters[l];
            var atNonZeros = adaptive.grad!.masked_select(adaptive.detach().ne(0));
            Assert.IsLessThan(1e-4f * (float)h.SparsityStrength, atNonZeros.abs().max().item<float>(), $"τ gradient at non-zeros, layer {l}");
        }
    }

    /// <summary>
    /// The authors' protocol (Split Fashion-MNIST, full data, MLP 784-256-128, the authors' options, consolidation after
    /// task 5) trained with each mode: they end within 0.3 points of average accuracy and 0.05× of capacity of each other.
    /// </summary>
    [TestMethod]
    [TestCategory("Long")] // minutes: ten full-data trainings; `dotnet test --filter TestCategory=Long`
    public void FastMatchesExactOnSplitFashionMnist()
    {
        if (!Directory.Exists(FashionMnist.DebianDirectory))
            Assert.Inconclusive($"Needs the full Fashion-MNIST (apt install dataset-fashion-mnist) in {FashionMnist.DebianDirectory}.");
        var train = FashionMnist.Load(FashionMnist.DebianDirectory, train: true);
        var test = FashionMnist.Load(FashionMnist.DebianDirectory, train: false);
        (double Accuracy, double Capacity) Run(RetroactiveUpdateMode mode)
        {
            var h = ApdHyperparameters.Paper with { RetroactiveUpdate = mode };
            using var network = ApdNetwork.Create(new ApdArchitecture(784, [256, 128], [], null), CPU, h.Seed);
            for (int t = 0; t < 5; t++)
            {
                using var scope = NewDisposeScope();
                var (x, y) = SplitTask(train, t);
                ApdLearner.LearnTask(network, $"task{t}", 2, x, y, h, null, CancellationToken.None);
            }
            double accuracy = Enumerable.Range(0, 5).Average(t =>
            {
                using var scope = NewDisposeScope();
                var (x, y) = SplitTask(test, t);
                return network.Forward(x, $"task{t}").argmax(1).eq(y).to(ScalarType.Float64).mean().item<double>();
            });
            return (accuracy, network.GetCapacity().Capacity);
        }
        var exact = Run(RetroactiveUpdateMode.Exact);
        var fast = Run(RetroactiveUpdateMode.Fast);
        Console.WriteLine($"Exact: {exact}; Fast: {fast}");
        Assert.IsGreaterThan(0.98, exact.Accuracy);
        Assert.IsLessThanOrEqualTo(0.003, Math.Abs(exact.Accuracy - fast.Accuracy));
        Assert.IsLessThanOrEqualTo(0.05, Math.Abs(exact.Capacity - fast.Capacity));
    }

    /// <summary>Split task t: classes 2t and 2t+1 relabelled 0/1.</summary>
    private static (Tensor Features, Tensor Labels) SplitTask(FashionMnistSet set, int t)
    {
        var rows = Enumerable.Range(0, set.Count).Where(i => set.Labels[i] / 2 == t).ToArray();
        return (tensor(rows.SelectMany(i => set.Images[i]).ToArray(), [rows.Length, FashionMnist.ImageSize]),
            tensor(rows.Select(i => (long)(set.Labels[i] % 2)).ToArray()));
    }

    [TestMethod]
    public void FastModeLearnsWithoutForgettingAndIsDeterministic()
    {
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = RetroactiveUpdateMode.Fast };
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        var accuracyWhenLearned = new List<double>();
        for (int t = 0; t < 3; t++)
        {
            var (x, y) = EngineTestData.Task(100 + t);
            using (x) using (y)
            {
                ApdLearner.LearnTask(network, $"t{t}", 2, x, y, h, null, CancellationToken.None);
                accuracyWhenLearned.Add(EngineTestData.Accuracy(network, $"t{t}", x, y));
            }
        }
        for (int t = 0; t < 3; t++)
        {
            var (x, y) = EngineTestData.Task(100 + t);
            using (x) using (y)
                Assert.IsLessThanOrEqualTo(0.02, accuracyWhenLearned[t] - EngineTestData.Accuracy(network, $"t{t}", x, y), $"t{t}");
        }
        using var again = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        CollectionAssert.AreEqual(EngineTestData.Serialize(network), EngineTestData.Serialize(again));
    }

    /// <summary>After an epoch, an element outside τ_i's support becomes active exactly when compensating σ's drift
    /// there would leave a value above the storage threshold: |Δσ M_i| &gt; λ₁ + λ₁/2λ₂.</summary>
    [TestMethod]
    public void ReactivationAddsOnlyElementsWhoseCompensationSurvivesTheThreshold()
    {
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = RetroactiveUpdateMode.Fast, SparsityStrength = 0.05 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, h);
        var layer = network.Layers[0];
        // An element off the support of both tasks' τ (λ₁ = 0.05 leaves most elements zero).
        using var scope = NewDisposeScope();
        var onSupport = zeros(layer.WeightCount, dtype: ScalarType.Bool);
        foreach (var slot in layer.Slots.Values) onSupport.index_fill_(0, slot.Adaptive.Indices, true);
        long element = onSupport.logical_not().nonzero()[0, 0].item<long>();
        long other = onSupport.logical_not().nonzero()[1, 0].item<long>();

        using var fast = new FastRetroactiveUpdate(network, h);
        long before = fast.SupportElements;
        var shared = network.Layers.Select(l => l.Shared.detach().clone()).ToList();
        double bound = h.SparsityStrength + h.SparsityStrength / (2 * h.RetroactiveStrength);
        using (no_grad())
        {
            shared[0].view(-1)[element] += 100 * bound;   // |Δσ M| far above the bound for both tasks (M > 0.01 here)
            shared[0].view(-1)[other] += 0.5 * bound;     // below it for every task (M < 1)
        }
        Assert.AreEqual(2L, fast.Refresh(shared), "the element, once per task");
        Assert.AreEqual(before + 2, fast.SupportElements);
        Assert.AreEqual(0L, fast.Refresh(shared), "an element already active is not added twice");
        // Both tasks' τ now compensate the drift there (minus κ), and nothing else moved off the supports.
        using var adaptive = fast.Adaptive(0);
        Assert.IsTrue(adaptive.reshape(2, -1)[.., element].abs().gt(h.SparsityStrength).all().item<bool>());
        Assert.IsTrue(adaptive.reshape(2, -1)[.., other].eq(0).all().item<bool>());
    }

    /// <summary>Commit writes every earlier τ_i straight from the supports, as <see cref="SparseAdaptive.FromDense"/>
    /// stores its dense value: same positions (ascending) and values, also for elements re-activated in several tasks
    /// (merged into the support between the elements it had), with and without half-precision storage.</summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void CommitStoresEachTaskLikeFromDenseAfterReactivation(bool halfPrecision)
    {
        var h = EngineTestData.QuickSettings with
        {
            RetroactiveUpdate = RetroactiveUpdateMode.Fast, SparsityStrength = 0.05, HalfPrecisionStorage = halfPrecision,
        };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        using var fast = new FastRetroactiveUpdate(network, h);
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        double bound = h.SparsityStrength + h.SparsityStrength / (2 * h.RetroactiveStrength);
        // A small drift everywhere and a large one at every 7th element: those leave the support of every task.
        var shared = network.Layers.Select(l =>
        {
            var drift = 0.01 * randn(l.WeightShape, generator: generator);
            drift.view(-1)[TensorIndex.Slice(0, null, 7)] += 100 * bound;
            return (l.Shared + drift).detach();
        }).ToList();
        Assert.IsGreaterThan(2L * network.Layers.Count, fast.Refresh(shared), "re-activated elements in several tasks and layers");
        var expected = Enumerable.Range(0, network.Layers.Count)
            .Select(l => fast.Adaptive(l).unbind(0).Select(a => SparseAdaptive.FromDense(a, h.SparsityStrength, halfPrecision)).ToArray())
            .ToArray();
        for (int l = 0; l < network.Layers.Count; l++) network.Layers[l].ReplaceShared(shared[l].clone().DetachFromDisposeScope());
        fast.Commit(network);
        for (int l = 0; l < network.Layers.Count; l++)
            for (int i = 0; i < network.Tasks.Count; i++)
            {
                var stored = network.Layers[l].Slots[network.Tasks[i]].Adaptive;
                CollectionAssert.AreEqual(expected[l][i].Indices.data<long>().ToArray(), stored.Indices.data<long>().ToArray(), $"positions, layer {l}, task {i}");
                CollectionAssert.AreEqual(expected[l][i].Values.data<float>().ToArray(), stored.Values.data<float>().ToArray(), $"values, layer {l}, task {i}");
                expected[l][i].Dispose();
            }
    }
    /// <summary>The supports are processed in blocks of consecutive tasks, so that no temporary spans every earlier
    /// task (<see cref="FastRetroactiveUpdate.BlockEntries"/>). The block size changes nothing: through two refreshes
    /// that re-activate elements (two batches) and the write-back, one task per block and all tasks in one block give
    /// bit-identical τ_i, σ-gradients and stored τ_i, and the same term to float rounding (its constant is summed block
    /// by block).</summary>
    [TestMethod]
    public void BlockSizeChangesNothing()
    {
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = RetroactiveUpdateMode.Fast, SparsityStrength = 0.05 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        using var copy = network.Clone();
        using var perTask = new FastRetroactiveUpdate(network, h, blockEntries: 1);
        using var whole = new FastRetroactiveUpdate(copy, h, blockEntries: long.MaxValue);
        using var scope = NewDisposeScope();
        using var generator = new Generator(11);
        double bound = h.SparsityStrength + h.SparsityStrength / (2 * h.RetroactiveStrength);
        List<global::TorchSharp.Modules.Parameter> shared = [];
        foreach (int every in new[] { 7, 5 })
        {
            shared = network.Layers.Select(l =>
            {
                var drift = 0.01 * randn(l.WeightShape, generator: generator);
                drift.view(-1)[TensorIndex.Slice(0, null, every)] += 100 * bound;
                return new global::TorchSharp.Modules.Parameter((l.Shared + drift).detach());
            }).ToList();
            long added = whole.Refresh(shared);
            Assert.IsGreaterThan(0L, added, "re-activated elements");
            Assert.AreEqual(added, perTask.Refresh(shared));
            Assert.AreEqual(whole.SupportElements, perTask.SupportElements);
            for (int l = 0; l < shared.Count; l++)
                CollectionAssert.AreEqual(whole.Adaptive(l).data<float>().ToArray(), perTask.Adaptive(l).data<float>().ToArray(), $"τ_i, layer {l}");
            shared.Select(p => p.sum()).Aggregate((a, b) => a + b).mul(0).backward();   // zero gradients to add to
            whole.AddGradients(shared, 1);
            var expected = shared.Select(p => p.grad!.clone()).ToList();
            foreach (var p in shared) p.grad!.zero_();
            perTask.AddGradients(shared, 1);
            for (int l = 0; l < shared.Count; l++)
                CollectionAssert.AreEqual(expected[l].data<float>().ToArray(), shared[l].grad!.data<float>().ToArray(), $"σ gradient, layer {l}");
            // The term is a small difference of large sums (τ_i compensates σ's drift): float rounding in summing its
            // constant, λ₂Σ‖Δτ_i‖² + λ₁Σ‖τ_i‖₁, is relative to that constant's size, not the term's.
            double constant = Enumerable.Range(0, shared.Count).Sum(l =>
            {
                var adaptive = whole.Adaptive(l);
                var start = stack(network.Tasks.Select(t => network.Layers[l].Slots[t].Adaptive.ToDense()));
                return h.RetroactiveStrength * (adaptive - start).square().sum().item<float>() + h.RetroactiveSparsityStrength * adaptive.abs().sum().item<float>();
            });
            float term = whole.Penalty(shared).item<float>();
            Assert.AreEqual(term, perTask.Penalty(shared).item<float>(), 1e-6 * constant);
        }
        for (int l = 0; l < shared.Count; l++)
        {
            network.Layers[l].ReplaceShared(shared[l].detach().clone().DetachFromDisposeScope());
            copy.Layers[l].ReplaceShared(shared[l].detach().clone().DetachFromDisposeScope());
        }
        whole.Commit(copy);
        perTask.Commit(network);
        CollectionAssert.AreEqual(EngineTestData.Serialize(copy), EngineTestData.Serialize(network));
    }

    /// <summary>The write-back stores each block's τ_i side by side in one tensor, and the next update takes such runs
    /// back as they are (a view, no copy): a run of at least half a block stays a block of its own, a task written
    /// elsewhere (the task trained last, or every task after a consolidation) starts a new one, and small pieces are
    /// packed together up to the block size.</summary>
    [TestMethod]
    public void BlocksFollowTheRunsTheLastWriteBackLeft()
    {
        using var scope = NewDisposeScope();
        var positions = arange(10, dtype: ScalarType.Int64);
        var values = arange(1, 11, dtype: ScalarType.Float32);
        SparseAdaptive View(long start, long length) => SparseAdaptive.FromParts([10], positions.narrow(0, start, length), values.narrow(0, start, length));
        SparseAdaptive Alone(long length) => SparseAdaptive.FromParts([10], arange(length, dtype: ScalarType.Int64), ones(length));
        // Three τ_i one after the other in one tensor (a block the last write-back left), then two written elsewhere.
        SparseAdaptive[] stored = [View(0, 4), View(4, 3), View(7, 3), Alone(2), Alone(1)];
        Assert.IsTrue(FastRetroactiveUpdate.FollowsInStorage(stored[0], stored[1]));
        Assert.IsTrue(FastRetroactiveUpdate.FollowsInStorage(stored[1], stored[2]));
        Assert.IsFalse(FastRetroactiveUpdate.FollowsInStorage(stored[0], stored[2]), "same tensor, not adjacent");
        Assert.IsFalse(FastRetroactiveUpdate.FollowsInStorage(stored[2], stored[3]), "another tensor");
        Assert.IsFalse(FastRetroactiveUpdate.FollowsInStorage(stored[3], stored[4]), "another tensor");

        // Blocks of 12: the run of 10 entries (at least half a block) stays whole, a view; the other two are packed (copied).
        CollectionAssert.AreEqual(new[] { (0, 3, true), (3, 5, false) }, FastRetroactiveUpdate.Blocks(stored, 12).ToArray());
        // Blocks of 30: the run is under half a block, so everything is packed into one block (copied).
        CollectionAssert.AreEqual(new[] { (0, 5, false) }, FastRetroactiveUpdate.Blocks(stored, 30).ToArray());
        // Blocks of 8: the run is split where a block is full (its first two τ_i stay one view); the rest is packed.
        CollectionAssert.AreEqual(new[] { (0, 2, true), (2, 5, false) }, FastRetroactiveUpdate.Blocks(stored, 8).ToArray());
        // One entry per block: one task per block, as before.
        CollectionAssert.AreEqual(new[] { (0, 1, true), (1, 2, true), (2, 3, true), (3, 4, true), (4, 5, true) }, FastRetroactiveUpdate.Blocks(stored, 1).ToArray());
    }
}
