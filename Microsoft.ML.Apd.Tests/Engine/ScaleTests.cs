using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>Issue #17: costs bounded in the number of tasks — the scoring cache's budget, shared task parameters
/// between a network and its clone, consolidation and forgetting with hundreds of tasks, with and without retroactive
/// windows.</summary>
[TestClass]
public sealed class ScaleTests
{
    /// <summary>Everything a network predicts for <paramref name="x"/>: every task's logits by Forward, by ForwardAll
    /// (task inference) and by the managed single-row path, row by row.</summary>
    private static Dictionary<string, float[]> Predictions(ApdNetwork network, Tensor x)
    {
        var result = new Dictionary<string, float[]>();
        var rows = x.data<float>().ToArray();
        int features = (int)x.shape[1];
        foreach (var task in network.Tasks)
        {
            result[$"{task} forward"] = EngineTestData.Logits(network, task, x);
            var managed = network.ManagedWeights(task)!;
            var scratch = managed.CreateScratch();
            var single = new float[x.shape[0] * managed.ClassCount];
            for (int r = 0; r < x.shape[0]; r++)
                managed.Logits(rows.AsSpan(r * features, features), single.AsSpan(r * managed.ClassCount, managed.ClassCount), scratch);
            result[$"{task} managed"] = single;
        }
        var all = network.ForwardAll(x, network.Tasks.ToList());
        for (int t = 0; t < all.Length; t++)
            using (all[t])
                result[$"{network.Tasks[t]} all"] = all[t].data<float>().ToArray();
        return result;
    }

    private static void AssertSame(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual, string when)
    {
        CollectionAssert.AreEquivalent(expected.Keys.ToArray(), actual.Keys.ToArray());
        foreach (var (key, values) in expected)
            CollectionAssert.AreEqual(values, actual[key], $"{key}, {when}");
    }

    [TestMethod]
    public void EvictionChangesNoPredictionAndTheBudgetHolds()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1, ConsolidationInterval = 3 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 6, h);
        var (x, _) = EngineTestData.Task(7, n: 12);
        using (x)
        {
            network.WeightCache.BudgetBytes = long.MaxValue;
            var expected = Predictions(network, x);
            // Unbounded: three kinds of entry per task (θ tensors, managed copy, first-layer factors).
            Assert.AreEqual(3 * network.Tasks.Count, network.WeightCache.Count);
            long everything = network.WeightCache.Bytes;
            AssertSame(expected, Predictions(network, x), "all cached");

            foreach (long budget in new[] { everything / 4, everything / 20, 0 })
            {
                network.WeightCache.BudgetBytes = budget;
                Assert.IsTrue(network.WeightCache.Bytes <= budget, $"lowering the budget to {budget} evicts at once");
                var afterEviction = Predictions(network, x);
                AssertSame(expected, afterEviction, $"budget {budget} bytes");
                Assert.IsTrue(network.WeightCache.Bytes <= budget, $"{network.WeightCache.Bytes} bytes cached, budget {budget}");
                Assert.IsTrue(network.WeightCache.Count < 3 * network.Tasks.Count, $"budget {budget}: some entries evicted");
            }
            Assert.AreEqual(0, network.WeightCache.Count, "budget 0 keeps nothing");
        }
    }

    /// <summary>Threads scoring different tasks through a cache that holds about one task: each evicts what the others
    /// are using, which must stay valid until they are done (they hold their own handles on the storage).</summary>
    [TestMethod]
    public void EvictionWhileOtherThreadsScoreIsSafe()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        var (x, _) = EngineTestData.Task(3, n: 16);
        using (x)
        {
            var expected = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
            long oneTask = network.WeightCache.Bytes / network.Tasks.Count;
            network.WeightCache.BudgetBytes = oneTask;
            Parallel.For(0, 64, i =>
            {
                string task = network.Tasks[i % network.Tasks.Count];
                CollectionAssert.AreEqual(expected[task], EngineTestData.Logits(network, task, x), task);
            });
            Assert.IsTrue(network.WeightCache.Bytes <= oneTask);
        }
    }

    /// <summary>Fit's copy of the previous network shares its stored tensors (nothing is copied): a following task's
    /// slot through new handles on the same storage, the immutable heads as the same objects (<see cref="SharedOwners"/>).
    /// Training, retroactive updates, consolidation and forgetting on the copy leave the previous network bit-identical —
    /// also once the copy is disposed.</summary>
    [TestMethod]
    public void CloneSharesStorageAndTheOriginalNeverChanges()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 2, ConsolidationInterval = 4 };
        using var original = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        var (x, _) = EngineTestData.Task(11, n: 20);
        using (x)
        {
            var bytes = EngineTestData.Serialize(original);
            var predictions = Predictions(original, x);
            using (var clone = original.Clone())
            {
                Assert.AreSame(original.HeadOf("t0"), clone.HeadOf("t0"), "one immutable head, held by both");
                var (followingOriginal, followingClone) = (original.Layers[0].Slots["t1"], clone.Layers[0].Slots["t1"]);
                Assert.AreNotSame(followingOriginal, followingClone, "a following task's slot changes with training: each network has its own");
                Assert.AreNotEqual(followingOriginal.MaskLogits.Handle, followingClone.MaskLogits.Handle, "own handles");
                Assert.AreEqual(Storage(followingOriginal.MaskLogits), Storage(followingClone.MaskLogits), "same storage");
                // Task 4 is trained on the clone (σ and every earlier τ_i move) and then consolidated.
                var (tx, ty) = EngineTestData.Task(200, 8);
                using (tx) using (ty) ApdLearner.LearnTask(clone, "t3", 2, tx, ty, h, null, CancellationToken.None);
                Assert.AreEqual(1, clone.ConsolidationCount);
                Assert.AreNotEqual(Storage(original.Layers[0].Shared), Storage(clone.Layers[0].Shared));
                CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(original), "while the clone lives");
                AssertSame(predictions, Predictions(original, x), "after training the clone");
                clone.Forget("t1");
            }
            CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(original), "after the clone is disposed");
            AssertSame(predictions, Predictions(original, x), "after the clone is disposed");
        }
    }

    /// <summary>Fit checks the saved size against the loader's limit by a bound from shapes and non-zero counts: it
    /// is never below the bytes Save writes (dense and sparse layers, float32 and float16 values, after consolidation).</summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void SaveSizeBoundIsAtLeastTheSavedBytes(bool halfPrecision)
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1, ConsolidationInterval = 2, HalfPrecisionStorage = halfPrecision };
        using var network = EngineTestData.Train(EngineTestData.SmallCnn, 3, h);
        long saved = EngineTestData.Serialize(network).Length;
        long bound = network.SaveSizeBound();
        Assert.IsGreaterThanOrEqualTo(saved, bound);
        Assert.IsLessThan(3 * saved, bound, "a bound, not a guess");
    }

    /// <summary>Hundreds of tiny tasks: consolidation keeps every task's θ within β/2 + λ₁ per element, and forgetting
    /// one leaves every other task bit-identical.</summary>
    [TestMethod]
    public void ConsolidationAndForgettingWithHundredsOfTasks()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1, BatchSize = 20, ConsolidationInterval = 5 };
        var architecture = new ApdArchitecture(4, [3], [], null);
        using var network = ApdNetwork.Create(architecture, CPU, 1);
        const int tasks = 300;
        for (int t = 0; t < tasks - 1; t++)
        {
            var (tx, ty) = EngineTestData.Task(500 + t, 4, n: 20);
            using (tx) using (ty) ApdLearner.LearnTask(network, $"t{t}", 2, tx, ty, h, null, CancellationToken.None);
        }
        using var scope = NewDisposeScope();
        var (x, y) = EngineTestData.Task(999, 4, n: 20);
        ApdLearner.TrainTask(network, $"t{tasks - 1}", 2, x, y, h, null, CancellationToken.None);
        var trained = network.Tasks.ToDictionary(t => t, t => network.Layers.Select(l => l.ComposeStored(t)).ToArray());
        // The 60th consolidation: K = K₀ + k·59 = 120 clusters of 300 tasks.
        KnowledgeConsolidation.Consolidate(network, h);
        Assert.AreEqual(60, network.ConsolidationCount);
        Assert.IsTrue(network.Layers.All(l => l.LocallyShared.Values.Sum(s => s.NonZeros) > 0), "elements shared within clusters");
        Assert.AreEqual(tasks, network.Tasks.Count(t => network.Layers.All(l => l.Slots[t].Group is not null)));
        double bound = h.ConsolidationThreshold / 2 + h.SparsityStrength + 1e-6;
        foreach (var task in network.Tasks)
            for (int l = 0; l < network.Layers.Count; l++)
            {
                double moved = (network.Layers[l].ComposeStored(task) - trained[task][l]).abs().max().item<float>();
                Assert.IsTrue(moved <= bound, $"{task}, layer {l}: θ moved by {moved} > β/2 + λ₁");
            }

        var probe = EngineTestData.Task(5, 4, n: 10).Features;
        AssertForgettingChangesNoOtherTask(network, probe, "t150");
    }

    /// <summary>Hundreds of tiny tasks with the library's retroactive window (W = 100) and consolidation schedule: the
    /// first 200 tasks end in two frozen cohorts whose predictions never change after their freeze, while the tasks of
    /// the open window keep being consolidated; forgetting a frozen and a following task leaves every other task
    /// bit-identical, and scoring all tasks at once (task inference) still equals each task's own forward pass.</summary>
    [TestMethod]
    public void RetroactiveWindowsWithHundredsOfTasks()
    {
        var h = EngineTestData.QuickSettings with
        {
            NumberOfEpochs = 1,
            BatchSize = 20,
            ConsolidationInterval = 5,
            RetroactiveWindow = ApdTrainer.Options.Defaults.RetroactiveWindow,
        };
        Assert.AreEqual(100, h.RetroactiveWindow, "the test's cohort ids assume W = 100");
        var architecture = new ApdArchitecture(4, [3], [], null);
        using var network = ApdNetwork.Create(architecture, CPU, 1);
        using var probe = EngineTestData.Task(5, 4, n: 10).Features;
        var atFreeze = new Dictionary<string, float[]>();
        for (int t = 0; t < 250; t++)
        {
            var (tx, ty) = EngineTestData.Task(500 + t, 4, n: 20);
            using (tx) using (ty) ApdLearner.LearnTask(network, $"t{t}", 2, tx, ty, h, null, CancellationToken.None);
            if ((t + 1) % 100 == 0)
                foreach (var task in network.Tasks.Where(task => !atFreeze.ContainsKey(task)))
                    atFreeze[task] = EngineTestData.Logits(network, task, probe);
        }

        Assert.AreEqual(50, network.FollowingTasks.Count);
        foreach (var layer in network.Layers)
        {
            CollectionAssert.AreEquivalent(new[] { 100, 200 }, layer.Frozen.Keys.ToArray());
            for (int t = 0; t < 250; t++)
                Assert.AreEqual(t < 100 ? 100 : t < 200 ? 200 : null, layer.Slots[$"t{t}"].FrozenOn, $"t{t}");
        }
        // The open window was consolidated 10 times since the last freeze (tasks 205, 210, …, 250).
        Assert.AreEqual(10, network.ConsolidationCount);
        Assert.IsTrue(network.FollowingTasks.All(t => network.Layers.All(l => l.Slots[t].Group is not null)), "following tasks clustered");
        foreach (var (task, logits) in atFreeze)
            CollectionAssert.AreEqual(logits, EngineTestData.Logits(network, task, probe), $"{task} changed after its freeze");

        AssertForgettingChangesNoOtherTask(network, probe, "t50", "t220");
        EngineTestData.AssertForwardAllMatchesForward(network, probe);
    }

    /// <summary>Forgets <paramref name="forgotten"/>; every other task's logits on <paramref name="probe"/> and its
    /// stored parameters stay bit-identical.</summary>
    private static void AssertForgettingChangesNoOtherTask(ApdNetwork network, Tensor probe, params string[] forgotten)
    {
        var expected = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, probe));
        var bytes = network.Tasks.ToDictionary(t => t, t => network.Layers.Select(l => Stored(l.Slots[t])).ToArray());
        foreach (var task in forgotten) network.Forget(task);
        CollectionAssert.AreEquivalent(expected.Keys.Except(forgotten).ToArray(), network.Tasks.ToArray());
        foreach (var task in network.Tasks)
        {
            CollectionAssert.AreEqual(expected[task], EngineTestData.Logits(network, task, probe), task);
            for (int l = 0; l < network.Layers.Count; l++)
                CollectionAssert.AreEqual(bytes[task][l], Stored(network.Layers[l].Slots[task]), $"{task}, layer {l}");
        }
    }

    /// <summary>Where a tensor's elements live.</summary>
    private static IntPtr Storage(Tensor tensor) => tensor.storage<float>().data_ptr();

    private static float[] Stored(TaskSlot slot)
        => [.. slot.MaskLogits.data<float>(), .. slot.Bias.data<float>(), .. slot.Adaptive.Values.data<float>(), .. slot.Adaptive.Indices.data<long>().ToArray().Select(i => (float)i)];
}
