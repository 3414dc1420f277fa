using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>Models saved by earlier builds keep loading and predicting exactly as when they were saved.</summary>
[TestClass]
public sealed class FormatCompatibilityTests
{
    /// <summary>
    /// Fixtures/format-v2.zip was saved by the build before network format 3 (commit f615736); format-v4.zip by the
    /// last build that wrote network format 4 (commit 411688e: input models, no low-rank parts); format-v5.zip by the last
    /// build that wrote network format 5 (commit c0c3f08: low-rank parts — t1 has one — and no frozen cohorts). All hold TinyData tasks
    /// t0 (a/b) and t1 (c/d), <see cref="TinyData.FastOptions"/> with HiddenLayerSizes {32, 16}, LearningRate 1e-3 and
    /// ConsolidationInterval 2 (so they hold locally-shared σ̃ too), MLContext seed 1. format-v*.scores.txt holds the
    /// Score bits it gave then for TinyData.Rows(0, "a", "b", 10, seed: 5) followed by TinyData.Rows(1, "c", "d", 10, seed: 5).
    /// </summary>
    [TestMethod]
    [DataRow("format-v2")]
    [DataRow("format-v4")]
    [DataRow("format-v5")]
    public void OlderFormatModelLoadsPredictsAsSavedAndContinues(string fixture)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "Persistence", "Fixtures");
        var ml = new MLContext(seed: 1);
        using var model = (ApdTransformer)ml.Model.Load(Path.Combine(directory, fixture + ".zip"), out _);
        CollectionAssert.AreEqual(new[] { "t0", "t1" }, model.Tasks.ToArray());
        var rows = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", 10, seed: 5).Concat(TinyData.Rows(1, "c", "d", 10, seed: 5)).ToList());
        var expected = File.ReadAllLines(Path.Combine(directory, fixture + ".scores.txt"))
            .Select(line => line.Split(' ').Select(bits => BitConverter.Int32BitsToSingle(Convert.ToInt32(bits, 16))).ToArray())
            .ToList();
        // Within float32 rounding, not bit for bit: libtorch's CPU kernels may round the last bit differently from one
        // process to another (observed on this 2-core machine under load, 1 ulp on one row of 20).
        var actual = TinyData.Scores(model.Transform(rows));
        Assert.HasCount(expected.Count, actual);
        for (int i = 0; i < expected.Count; i++)
            for (int c = 0; c < expected[i].Length; c++)
                Assert.AreEqual(expected[i][c], actual[i][c], 1e-6f, $"row {i}, class {c}");

        // Saved again (today's format) and loaded, it predicts exactly as loaded from the old one.
        using var stream = new MemoryStream();
        ml.Model.Save(model, rows.Schema, stream);
        stream.Position = 0;
        using var resaved = (ApdTransformer)ml.Model.Load(stream, out _);
        CollectionAssert.AreEqual(model.SerializePayload(), resaved.SerializePayload());

        var options = TinyData.FastOptions();
        options.LowRankAdaptiveRank = 2;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        using var continued = trainer.Fit(ml.Data.LoadFromEnumerable(TinyData.Rows(2, "e", "f").ToList()), "t2", model);
        CollectionAssert.AreEqual(new[] { "t0", "t1", "t2" }, continued.Tasks.ToArray());
        Assert.IsNotNull(continued.Network.Layers[0].Slots["t2"].LowRank, "a task added to an old model can have a low-rank part");
        // Continuing does not cost the old tasks accuracy (the v4 fixture's t0 learned little: 54 %, v2's 84 %).
        var t0Rows = ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").ToList());
        using var before = model.ForTask("t0");
        using var after = continued.ForTask("t0");
        double accuracyBefore = ml.MulticlassClassification.Evaluate(before.Transform(t0Rows)).MicroAccuracy;
        Assert.IsGreaterThanOrEqualTo(accuracyBefore - 0.02, ml.MulticlassClassification.Evaluate(after.Transform(t0Rows)).MicroAccuracy);
    }

    public sealed class Inferred
    {
        public string PredictedTask { get; set; } = "";
    }

    /// <summary>Tasks saved before format 4 have no model of their inputs: rows without a task id go to the task of
    /// lowest energy (highest logsumexp of its logits), also after a task with an input model is added to them.</summary>
    [TestMethod]
    public void TasksWithoutInputModelsAreInferredByEnergy()
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "Persistence", "Fixtures");
        var ml = new MLContext(seed: 1);
        using var loaded = (ApdTransformer)ml.Model.Load(Path.Combine(directory, "format-v2.zip"), out _);
        var trainer = ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions());
        using var continued = trainer.Fit(ml.Data.LoadFromEnumerable(TinyData.Rows(2, "e", "f").ToList()), "t2", loaded);
        Assert.IsNull(continued.Network.InputModelOf("t0"));
        Assert.IsNotNull(continued.Network.InputModelOf("t2"));
        var rows = TinyData.Rows(0, "a", "b", 10, seed: 5).Concat(TinyData.Rows(2, "e", "f", 10, seed: 5)).ToList();
        foreach (var model in new[] { loaded, continued })
        {
            var inferred = ml.Data.CreateEnumerable<Inferred>(model.Transform(ml.Data.LoadFromEnumerable(
                rows.Select(r => new TinyData.FeaturesOnly { Features = r.Features }).ToList())), reuseRowObject: false).ToList();
            using var features = global::TorchSharp.torch.tensor(rows.SelectMany(r => r.Features).ToArray(), [rows.Count, rows[0].Features.Length]);
            var energy = model.Tasks.Select(task =>
            {
                using var logits = model.Network.Forward(features, task);
                using var lse = logits.logsumexp(1);
                return lse.data<float>().ToArray();
            }).ToArray();
            for (int i = 0; i < rows.Count; i++)
            {
                var order = Enumerable.Range(0, energy.Length).OrderByDescending(t => energy[t][i]).ToArray();
                if (energy[order[0]][i] - energy[order[1]][i] < 1e-4) continue; // a tie to float rounding
                Assert.AreEqual(model.Tasks[order[0]], inferred[i].PredictedTask, $"row {i} of a model of {model.Tasks.Count} tasks");
            }
        }
    }
}
