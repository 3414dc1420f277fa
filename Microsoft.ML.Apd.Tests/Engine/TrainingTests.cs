using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class TrainingTests
{
    [TestMethod]
    public void GradientsReachSharedCurrentTaskAndEarlierAdaptiveButNotEarlierMasksOrHeads()
    {
        // Exact: the earlier τ_i are trained by the optimizer (Fast solves them in closed form, see FastRetroactiveTests).
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = RetroactiveUpdateMode.Exact };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 1, h);
        var (x, y) = EngineTestData.Task(7);
        using (x) using (y)
        using (var generator = new Generator(3))
        using (var session = new TaskTrainingSession(network, "b", 2, h, generator))
        using (var scope = NewDisposeScope())
        {
            // Move σ a little so the retroactive term is non-trivial, then take gradients of the full objective.
            using (no_grad()) session.Shared[0].add_(0.05);
            session.Loss(x, y).backward();
            static double Norm(Tensor? g) => g is null ? 0 : g.abs().sum().item<float>();
            foreach (var p in session.Shared.Concat(session.MaskLogits).Concat(session.Adaptive).Append(session.HeadWeight))
                Assert.IsGreaterThan(0.0, Norm(p.grad));
            Assert.HasCount(2, session.Retroactive.Parameters);
            foreach (var p in session.Retroactive.Parameters) Assert.IsGreaterThan(0.0, Norm(p.grad), "earlier τ_i get gradients");
            var earlier = network.Layers[0].Slots["t0"];
            Assert.IsFalse(earlier.MaskLogits.requires_grad);
            Assert.IsNull(earlier.MaskLogits.grad);
            Assert.IsFalse(network.HeadOf("t0").Weight.requires_grad);
            Assert.IsNull(network.HeadOf("t0").Weight.grad);
            Assert.IsFalse(session.TrainableParameters.Any(p => ReferenceEquals(p, earlier.MaskLogits) || ReferenceEquals(p, earlier.Bias)));
        }
    }

    /// <summary>The training step's gradients (task loss by autograd, sparsity/decay/retroactive terms added in place,
    /// all × GradientScale) and returned task loss equal autograd's gradients of the whole objective as one expression, for the first task
    /// (σ decays) and a later one (retroactive term), with both retroactive strategies.</summary>
    [TestMethod]
    [DataRow(0, RetroactiveUpdateMode.Exact)]
    [DataRow(2, RetroactiveUpdateMode.Exact)]
    [DataRow(2, RetroactiveUpdateMode.Fast)]
    public void StepGradientsEqualAutogradOfTheWholeObjective(int earlierTasks, RetroactiveUpdateMode mode)
    {
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = mode, MaskSparsityStrength = 1e-3 };
        using var network = earlierTasks == 0 ? ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 1) : EngineTestData.Train(EngineTestData.SmallMlp, earlierTasks, h);
        var (x, y) = EngineTestData.Task(7);
        using (x) using (y)
        using (var generator = new Generator(3))
        using (var session = new TaskTrainingSession(network, "new", 2, h, generator))
        using (var scope = NewDisposeScope())
        {
            // Move σ and the new task's τ so every term has a non-zero gradient.
            using (no_grad())
                for (int l = 0; l < session.Shared.Count; l++)
                {
                    session.Shared[l].add_(0.02);
                    session.Adaptive[l].mul_(0.5);
                }
            session.Retroactive.Refresh(session.Shared);   // Fast evaluates its support gradient G at this σ
            var parameters = session.TrainableParameters.ToList();
            var reference = session.Loss(x, y);
            (reference * h.GradientScale).backward();
            var expected = parameters.Select(p => p.grad!.clone()).ToList();
            var taskLoss = session.Backward(x, y);
            Assert.AreEqual(nn.functional.cross_entropy(session.Logits(x), y).item<float>(), taskLoss.item<float>(), 1e-6);
            for (int i = 0; i < parameters.Count; i++)
            {
                float scale = expected[i].abs().max().item<float>();
                Assert.IsGreaterThan(0f, scale, $"parameter {i} has a gradient");
                Assert.IsLessThan(1e-5f * scale + 1e-7f, (parameters[i].grad! - expected[i]).abs().max().item<float>(), $"parameter {i}");
            }
        }
    }

    [TestMethod]
    public void RetroactiveTermIsZeroAtStartAndGrowsWhenSharedMoves()
    {
        var h = EngineTestData.QuickSettings with { RetroactiveUpdate = RetroactiveUpdateMode.Exact };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, h);
        using var generator = new Generator(3);
        using var session = new TaskTrainingSession(network, "c", 2, h, generator);
        var retro = (ExactRetroactiveUpdate)session.Retroactive;
        CollectionAssert.AreEqual(new double[] { 0, 0 }, retro.Drift(session.Shared));
        using (no_grad()) session.Shared[1].add_(0.1);
        Assert.IsTrue(retro.Drift(session.Shared).All(d => d > 0));
    }

    /// <summary>Two conflicting tasks (the same inputs, opposite labels, and a long second task that moves σ):
    /// without the retroactive term (λ₂ = 0) the first task's outputs drift and its loss rises; with the default λ₂
    /// they barely move.</summary>
    [TestMethod]
    public void RetroactiveUpdatePreventsForgettingOfConflictingTask()
    {
        (double Drift, double LossIncrease, double AccuracyDrop) Run(double lambda2)
        {
            var h = EngineTestData.QuickSettings with { RetroactiveStrength = lambda2 };
            using var network = ApdNetwork.Create(EngineTestData.SmallMlp, CPU, 5);
            var (xa, ya) = EngineTestData.Task(1, direction: 0);
            var (xb, yb) = EngineTestData.Task(2, direction: 0, flip: true);
            using (xa) using (ya) using (xb) using (yb)
            {
                ApdLearner.LearnTask(network, "a", 2, xa, ya, h, null, CancellationToken.None);
                var before = EngineTestData.Logits(network, "a", xa);
                double lossBefore = Loss(network, xa, ya), accBefore = EngineTestData.Accuracy(network, "a", xa, ya);
                ApdLearner.LearnTask(network, "b", 2, xb, yb, h with { NumberOfEpochs = 15, LearningRate = 3e-2 }, null, CancellationToken.None);
                var after = EngineTestData.Logits(network, "a", xa);
                return (before.Zip(after, (p, q) => Math.Abs(p - q)).Average(), Loss(network, xa, ya) - lossBefore,
                    accBefore - EngineTestData.Accuracy(network, "a", xa, ya));
            }
        }
        static double Loss(ApdNetwork network, Tensor x, Tensor y)
        {
            using var scope = NewDisposeScope();
            return nn.functional.cross_entropy(network.Forward(x, "a"), y).item<float>();
        }
        var without = Run(0);
        var with = Run(100);
        Console.WriteLine($"λ₂=0: {without}; λ₂=100: {with}");
        Assert.IsLessThan(without.Drift / 100, with.Drift, "outputs of the first task barely move with λ₂");
        Assert.IsGreaterThan(0.02, without.LossIncrease, "λ₂ = 0 forgets");
        Assert.IsLessThan(without.LossIncrease / 10, Math.Abs(with.LossIncrease));
        Assert.IsLessThanOrEqualTo(0.01, with.AccuracyDrop);
    }

    [TestMethod]
    public void StoredAdaptiveIsThresholdedAfterTraining()
    {
        var h = EngineTestData.QuickSettings;
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, h);
        foreach (var layer in network.Layers)
            foreach (var slot in layer.Slots.Values)
                Assert.IsGreaterThan((float)h.SparsityStrength, slot.Adaptive.Values.abs().min().item<float>());
    }

    [TestMethod]
    public void TrainingTwiceWithSameSeedIsIdentical()
    {
        var h = EngineTestData.QuickSettings with { ConsolidationInterval = 2 };
        using var first = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        using var second = EngineTestData.Train(EngineTestData.SmallMlp, 3, h);
        CollectionAssert.AreEqual(EngineTestData.Serialize(first), EngineTestData.Serialize(second));
        using var other = EngineTestData.Train(EngineTestData.SmallMlp, 1, h with { Seed = 2 });
        using var same = EngineTestData.Train(EngineTestData.SmallMlp, 1, h);
        CollectionAssert.AreNotEqual(EngineTestData.Serialize(other), EngineTestData.Serialize(same));
    }

    [TestMethod]
    public void ExistingTaskNameThrowsAndCancellationStops()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 1, h);
        var (x, y) = EngineTestData.Task(1);
        using (x) using (y)
        {
            Assert.ThrowsExactly<InvalidOperationException>(() => ApdLearner.LearnTask(network, "t0", 2, x, y, h, null, CancellationToken.None));
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            using var clone = network.Clone();
            Assert.ThrowsExactly<OperationCanceledException>(() => ApdLearner.LearnTask(clone, "c", 2, x, y, h, null, cts.Token));
        }
        CollectionAssert.AreEqual(new[] { "t0" }, network.Tasks.ToArray());
    }

    [TestMethod]
    public void ForwardIsSafeConcurrently()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 1 };
        using var network = EngineTestData.Train(EngineTestData.SmallMlp, 2, h);
        var (x, y) = EngineTestData.Task(1);
        using (x) using (y)
        {
            var expected = new[] { "t0", "t1" }.ToDictionary(t => t, t => EngineTestData.Logits(network, t, x));
            network.InvalidateCache();
            Parallel.For(0, 16, i =>
            {
                var task = i % 2 == 0 ? "t0" : "t1";
                CollectionAssert.AreEqual(expected[task], EngineTestData.Logits(network, task, x));
            });
        }
    }

    /// <summary>Native tensors alive after 20 tasks are exactly what the network stores (plus a constant).</summary>
    [TestMethod]
    public void NoNativeTensorGrowthAcrossTasks()
    {
        var h = EngineTestData.QuickSettings with { NumberOfEpochs = 2, ConsolidationInterval = 5 };
        var arch = new ApdArchitecture(8, [6], [], null);
        var (x, y) = EngineTestData.Task(1, n: 100);
        using (x) using (y)
        using (var network = ApdNetwork.Create(arch, CPU, 1))
        {
            long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int t = 0; t < 20; t++)
            {
                ApdLearner.LearnTask(network, $"t{t}", 2, x, y, h, null, CancellationToken.None);
                network.InvalidateCache();
                // Stored per task: head (2) + input model μ, v (2) + per layer mask, bias, τ indices, τ values (4);
                // plus σ̃ (2 each).
                long stored = 4L * network.Tasks.Count + 4L * network.Tasks.Count * network.Layers.Count
                    + 2L * network.Layers.Sum(l => l.LocallyShared.Count);
                long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount - baseline;
                Console.WriteLine($"task {t + 1}: live {live}, stored {stored}");
                Assert.AreEqual(stored, live, $"after task {t + 1}");
            }
        }
    }
}
