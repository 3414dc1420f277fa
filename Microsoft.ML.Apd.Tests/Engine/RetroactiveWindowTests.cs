using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

/// <summary>Issue #17: the retroactive window W. When W tasks follow σ they are frozen into a cohort on today's σ:
/// their predictions never change again, the retroactive update and consolidation leave them out, and saving, loading,
/// continuing, forgetting and scoring all tasks at once see the cohorts.</summary>
[TestClass]
public sealed class RetroactiveWindowTests
{
    private static ApdHyperparameters Window(RetroactiveUpdateMode mode) => EngineTestData.QuickSettings with
    {
        NumberOfEpochs = 2,
        ConsolidationInterval = 2,
        // One cluster: the two tasks of a window share what agrees, so a cohort has σ̃ to keep.
        InitialClusterCount = 1,
        ClusterCountIncrement = 0,
        RetroactiveWindow = 2,
        RetroactiveUpdate = mode,
    };

    private static void Learn(ApdNetwork network, int t, ApdHyperparameters h)
    {
        var (x, y) = EngineTestData.Task(100 + t, network.Architecture.InputSize);
        using (x) using (y) ApdLearner.LearnTask(network, $"t{t}", 2, x, y, h, null, CancellationToken.None);
    }

    private static int? CohortOf(ApdNetwork network, string task)
    {
        var cohorts = network.Layers.Select(l => l.Slots[task].FrozenOn).Distinct().ToList();
        Assert.HasCount(1, cohorts, $"{task}: one cohort in every layer");
        return cohorts[0];
    }

    [TestMethod]
    [DataRow(RetroactiveUpdateMode.Fast)]
    [DataRow(RetroactiveUpdateMode.Exact)]
    public void FrozenTasksNeverChangeAgainAndLeaveTheRetroactiveUpdate(RetroactiveUpdateMode mode)
    {
        var h = Window(mode);
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        var (probe, _) = EngineTestData.Task(7, n: 16);
        using var x = probe;
        var frozenLogits = new Dictionary<string, float[]>();
        for (int t = 0; t < 5; t++)
        {
            Learn(network, t, h);
            // After tasks 2 and 4 the window is full: its tasks are frozen, on cohorts named by the tasks learned.
            int following = (t + 1) % 2;
            Assert.HasCount(following, network.FollowingTasks, $"after task {t + 1}");
            foreach (var task in network.Tasks.Except(network.FollowingTasks))
            {
                Assert.AreEqual(2 * (int.Parse(task[1..]) / 2 + 1), CohortOf(network, task), task);
                // Frozen: every later task leaves its predictions bit-identical.
                if (frozenLogits.TryGetValue(task, out var expected))
                    CollectionAssert.AreEqual(expected, EngineTestData.Logits(network, task, x), $"{task} after task {t + 1}");
                else
                    frozenLogits[task] = EngineTestData.Logits(network, task, x);
            }
            if (following == 0) Assert.AreEqual(0, network.ConsolidationCount, "each window clusters afresh");
        }
        CollectionAssert.AreEqual(new[] { "t4" }, network.FollowingTasks.ToArray());
        foreach (var layer in network.Layers)
        {
            CollectionAssert.AreEquivalent(new[] { 2, 4 }, layer.Frozen.Keys.ToArray());
            // σ moved on after each freeze: the snapshots are what keeps the frozen tasks' θ.
            using var same = layer.Frozen[2].Shared.eq(layer.Shared).all();
            Assert.IsFalse(same.item<bool>(), "σ moved after the first freeze");
        }
        // The consolidation at task 2 and task 4 ran inside their window and left σ̃ with the cohorts.
        Assert.IsTrue(network.Layers.Any(l => l.Frozen.Values.Any(c => c.LocallyShared.Count > 0)), "a cohort keeps its clusters' σ̃");
        Assert.IsTrue(network.Layers.All(l => l.LocallyShared.Count == 0), "the live window has not consolidated yet");

        // The retroactive update of the next task sees only the tasks that follow σ.
        using (var retroactive = RetroactiveUpdate.Create(network, h))
            if (retroactive is ExactRetroactiveUpdate exact)
                Assert.HasCount(1, exact.Drift(network.Layers.Select(l => l.Shared).ToList()));
        EngineTestData.AssertForwardAllMatchesForward(network, x);
    }

    [TestMethod]
    public void CohortsSaveLoadAndContinueBitExact()
    {
        var h = Window(RetroactiveUpdateMode.Fast) with { HalfPrecisionStorage = true };
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        for (int t = 0; t < 5; t++) Learn(network, t, h);
        var bytes = EngineTestData.Serialize(network);
        using var stream = new MemoryStream(bytes);
        using var loaded = ApdNetwork.Load(new BinaryReader(stream), CPU);
        CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(loaded), "save → load → save");
        var (probe, _) = EngineTestData.Task(8, n: 16);
        using var x = probe;
        foreach (var task in network.Tasks)
            CollectionAssert.AreEqual(EngineTestData.Logits(network, task, x), EngineTestData.Logits(loaded, task, x), task);
        Assert.IsTrue(network.SaveSizeBound() >= bytes.Length, "the size bound counts the cohorts");

        // Continuing the loaded network is continuing the original: the window fills and freezes again.
        Learn(network, 5, h);
        Learn(loaded, 5, h);
        CollectionAssert.AreEqual(EngineTestData.Serialize(network), EngineTestData.Serialize(loaded), "continued");
        Assert.AreEqual(6, CohortOf(loaded, "t5"));
    }

    [TestMethod]
    public void ForgettingACohortsTasksDropsItsSnapshotAndChangesNoOtherTask()
    {
        var h = Window(RetroactiveUpdateMode.Fast);
        using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        for (int t = 0; t < 5; t++) Learn(network, t, h);
        var (probe, _) = EngineTestData.Task(9, n: 16);
        using var x = probe;
        var expected = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
        network.Forget("t0");
        Assert.IsTrue(network.Layers.All(l => l.Frozen.ContainsKey(2)), "t1 still uses cohort 2");
        network.Forget("t3");
        network.Forget("t1");
        Assert.IsTrue(network.Layers.All(l => !l.Frozen.ContainsKey(2) && l.Frozen.ContainsKey(4)), "cohort 2 dropped with its last task");
        foreach (var task in network.Tasks)
            CollectionAssert.AreEqual(expected[task], EngineTestData.Logits(network, task, x), task);
        EngineTestData.AssertForwardAllMatchesForward(network, x);
    }

    /// <summary>No window (the authors' algorithm, <see cref="ApdHyperparameters.Paper"/>) and tasks below the window
    /// never freeze.</summary>
    [TestMethod]
    public void WithoutAWindowOrBelowItEveryTaskFollowsSigma()
    {
        foreach (var h in new[] { Window(RetroactiveUpdateMode.Fast) with { RetroactiveWindow = 0 }, Window(RetroactiveUpdateMode.Fast) with { RetroactiveWindow = 6 } })
        {
            using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
            for (int t = 0; t < 5; t++) Learn(network, t, h);
            CollectionAssert.AreEqual(network.Tasks.ToArray(), network.FollowingTasks.ToArray(), $"W = {h.RetroactiveWindow}");
            Assert.IsTrue(network.Layers.All(l => l.Frozen.Count == 0));
        }
    }

    /// <summary>A frozen task's slot never changes again, so a copy of the network (every <c>Fit</c> makes one) holds the
    /// same slot object instead of new handles on its tensors; forgetting that task in the copy, training the copy and
    /// disposing it leave the original network bit-identical, and the original still frees what it holds.</summary>
    [TestMethod]
    public void CopiesShareFrozenSlotsAndTheOriginalNeverChanges()
    {
        var h = Window(RetroactiveUpdateMode.Fast);
        using var original = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1);
        for (int t = 0; t < 3; t++) Learn(original, t, h);
        Assert.IsNotNull(CohortOf(original, "t0"));
        Assert.IsNull(CohortOf(original, "t2"));
        var (x, _) = EngineTestData.Task(11, n: 20);
        using (x)
        {
            var bytes = EngineTestData.Serialize(original);
            var logits = original.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(original, t, x));
            using (var copy = original.Clone())
            {
                for (int l = 0; l < original.Layers.Count; l++)
                {
                    Assert.AreSame(original.Layers[l].Slots["t0"], copy.Layers[l].Slots["t0"], $"frozen slot, layer {l}");
                    Assert.AreNotSame(original.Layers[l].Slots["t2"], copy.Layers[l].Slots["t2"], $"following slot, layer {l}");
                }
                copy.Forget("t0");
                Learn(copy, 3, h);
                Learn(copy, 4, h);
                CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(original), "while the copy lives");
            }
            CollectionAssert.AreEqual(bytes, EngineTestData.Serialize(original), "after the copy is disposed");
            foreach (var task in original.Tasks)
                CollectionAssert.AreEqual(logits[task], EngineTestData.Logits(original, task, x), task);
        }
    }
}
