using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class ConsolidationTests
{
    [TestMethod]
    public void KMeansFindsKnownClusters()
    {
        using var scope = NewDisposeScope();
        var points = tensor(new float[] { 0, 0, 0.1f, 0, 10, 10, 0, 0.1f, 10.1f, 10, 9.9f, 10 }, [6, 2]);
        var gram = points.mm(points.t());
        // Start: centroids at points 0 and 1 (one-point weights).
        var assignment = KMeans.Fit(gram, eye(6).index_select(1, tensor(new long[] { 0, 1 })));
        CollectionAssert.AreEqual(new[] { 0, 0, 1, 0, 1, 1 }, assignment);
        // A bad start (both centroids in one cluster) still converges to the two groups.
        var fromBadStart = KMeans.Fit(gram, eye(6).index_select(1, tensor(new long[] { 0, 3 })));
        Assert.AreEqual(fromBadStart[0], fromBadStart[1]);
        Assert.AreNotEqual(fromBadStart[0], fromBadStart[2]);
        Assert.AreEqual(fromBadStart[2], fromBadStart[4]);
    }

    /// <summary>The Gram matrix of sparse points, summed position by position, is X Xᵀ.</summary>
    [TestMethod]
    public void GramOfSparsePointsIsTheProductOfTheDensePoints()
    {
        using var scope = NewDisposeScope();
        var dense = tensor(new float[] { 0, 1.5f, 0, -2, 3, 0, 0, 0, 0, 0, 0, 0, 0.5f, 0, 4, 1 }, [4, 4]);
        var sparse = Enumerable.Range(0, 4).Select(i =>
        {
            var row = dense[i];
            var positions = row.nonzero().reshape(-1);
            return (positions.data<long>().ToArray(), row.index_select(0, positions).data<float>().ToArray());
        }).ToList();
        var expected = dense.to(ScalarType.Float64).mm(dense.to(ScalarType.Float64).t());
        CollectionAssert.AreEqual(expected.data<double>().ToArray(), KMeans.Gram(sparse).data<double>().ToArray());
    }

    /// <summary>Each entry of the sparse Gram matrix is Σ_e x_ie·x_je summed in ascending position order, to the bit
    /// (consolidation's clusters, hence the models, must not depend on how the sum is organised), and it is exactly
    /// symmetric: points that share many positions, a few dense ones, values of mixed sign and scale.</summary>
    [TestMethod]
    public void GramEntriesAreThePositionOrderedSumsToTheBit()
    {
        using var scope = NewDisposeScope();
        var random = new Random(5);
        const int count = 23, size = 400;
        var dense = new float[count][];
        for (int i = 0; i < count; i++)
        {
            double density = i % 7 == 0 ? 0.95 : 0.2;
            dense[i] = Enumerable.Range(0, size).Select(e => random.NextDouble() < (e < 100 ? 0.9 : density)
                ? (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 3))) : 0f).ToArray();
        }
        var sparse = dense.Select(row =>
        {
            var positions = Enumerable.Range(0, size).Where(e => row[e] != 0).Select(e => (long)e).ToArray();
            return (positions, positions.Select(e => row[e]).ToArray());
        }).ToList();
        var gram = KMeans.Gram(sparse).data<double>().ToArray();
        for (int i = 0; i < count; i++)
            for (int j = 0; j < count; j++)
            {
                double expected = 0;
                for (int e = 0; e < size; e++)
                    if (dense[i][e] != 0 && dense[j][e] != 0) expected += (double)dense[i][e] * dense[j][e];
                Assert.AreEqual(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(gram[i * count + j]), $"entry ({i}, {j})");
            }
    }

    /// <summary>Consolidation's Gram matrix, from products of the stored parts, is X Xᵀ of the full adaptive tensors
    /// σ̃_{g(i)} + τ_i: tasks with and without a group, a group with no σ̃, σ̃ and τ overlapping.</summary>
    [TestMethod]
    public void ConsolidationGramIsTheProductOfTheFullTensors()
    {
        using var scope = NewDisposeScope();
        var locallyShared = new Dictionary<int, SparseAdaptive>
        {
            [3] = SparseAdaptive.FromDense(tensor(new float[] { 1, 0, 2, 0, 0.5f, 0 }), 0),
            [7] = SparseAdaptive.FromDense(tensor(new float[] { 0, -1, 0, 0, 3, 0 }), 0),
        };
        float[][] tau = [[0, 2, 0, 1, 0, 0], [0.5f, 0, 0, 0, 0, -2], [0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 1, 0], [0, 0, 4, 0, 0, 1]];
        int?[] groups = [3, 3, 7, null, 5];
        var slots = tau.Select((t, i) => new TaskSlot(zeros(1), zeros(1), SparseAdaptive.FromDense(tensor(t), 0), groups[i])).ToList();
        var full = stack(slots.Select(s => s.Adaptive.ToDense() + (s.Group is int g && locallyShared.TryGetValue(g, out var l) ? l.ToDense() : zeros(6)))).to(ScalarType.Float64);
        var expected = full.mm(full.t()).data<double>().ToArray();
        var gram = KnowledgeConsolidation.Gram(slots, locallyShared).data<double>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], gram[i], 1e-12, $"entry {i}");
        foreach (var s in slots) s.Dispose();
        foreach (var l in locallyShared.Values) l.Dispose();
    }

    [TestMethod]
    public void ConsolidationSharesCloseElementsAndPreservesPredictionsWithinBeta()
    {
        var h = EngineTestData.QuickSettings;
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        var (x, _) = EngineTestData.Task(50);
        using (x)
        {
            var thetaBefore = network.Tasks.ToDictionary(t => t, t => network.Layers.Select(l => l.ComposeStored(t).DetachFromDisposeScope()).ToArray());
            var logitsBefore = network.Tasks.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
            var predictionsBefore = network.Tasks.ToDictionary(t => t, t => Argmax(logitsBefore[t]));
            var beta = 0.05;
            KnowledgeConsolidation.Consolidate(network, h with { ConsolidationThreshold = beta, InitialClusterCount = 2 });
            Assert.AreEqual(1, network.ConsolidationCount);
            Assert.IsGreaterThan(0L, network.Layers.Sum(l => l.LocallyShared.Values.Sum(s => s.NonZeros)), "something is shared");
            foreach (var task in network.Tasks)
            {
                for (int l = 0; l < network.Layers.Count; l++)
                {
                    using var after = network.Layers[l].ComposeStored(task);
                    using var diff = (after - thetaBefore[task][l]).abs().max();
                    Assert.IsLessThanOrEqualTo(beta / 2 + h.SparsityStrength + 1e-6, diff.item<float>(), $"θ of {task}, layer {l}");
                    thetaBefore[task][l].Dispose();
                }
                var logitsAfter = EngineTestData.Logits(network, task, x);
                var agree = Argmax(logitsAfter).Zip(predictionsBefore[task], (a, b) => a == b).Count(s => s);
                Assert.IsGreaterThanOrEqualTo(0.97 * predictionsBefore[task].Length, (double)agree, $"predictions of {task}");
            }
            // A second consolidation supersedes the first and keeps θ within β/2 of the consolidated state.
            KnowledgeConsolidation.Consolidate(network, h with { ConsolidationThreshold = beta });
            Assert.AreEqual(2, network.ConsolidationCount);
        }
    }

    [TestMethod]
    public void ConsolidationRunsEverySTasksDuringTraining()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 2, NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 4, h);
        Assert.AreEqual(2, network.ConsolidationCount);
        Assert.IsTrue(network.Tasks.All(t => network.Layers[0].Slots[t].Group is not null));
    }

    [TestMethod]
    public void ForgettingDoesNotMoveTheConsolidationSchedule()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 2, NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        Assert.AreEqual(1, network.ConsolidationCount);
        network.Forget("t0");
        // Three tasks learned, two kept: the 4th task learned is the next due, as without forgetting.
        Assert.IsFalse(KnowledgeConsolidation.IsDue(network, 2));
        var (x, y) = EngineTestData.Task(50);
        using (x) using (y) ApdLearner.LearnTask(network, "t3", 2, x, y, h, null, CancellationToken.None);
        Assert.AreEqual(2, network.ConsolidationCount);
        Assert.AreEqual(4, network.LearnedTaskCount);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => KnowledgeConsolidation.IsDue(network, 0));
    }

    private static int[] Argmax(float[] logits) => Enumerable.Range(0, logits.Length / 2).Select(i => logits[2 * i + 1] > logits[2 * i] ? 1 : 0).ToArray();
}
