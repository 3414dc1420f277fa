using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>
/// Prediction without a task id on tiny tasks: which rows are inferred, that an inferred row is scored exactly as its
/// inferred task scores it, the extra columns, the option that requires ids, and every way of scoring (Transform,
/// PredictionEngine, after save/load, in a pipeline). How often inference picks the right task is a benchmark
/// (docs/benchmarks.md); the rule itself is checked on Fashion-MNIST in <see cref="SplitFashionMnistTests"/>.
/// </summary>
[TestClass]
public sealed class TaskInferenceTests
{
    private static MLContext _ml = null!;
    private static ApdTransformer _model = null!; // tasks t0 (a/b), t1 (c/d)
    private static List<TinyData.TextRow> _rows = null!;
    private static readonly List<string> Log = new();

    public sealed class Labelled
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class Inferred
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
        public string PredictedTask { get; set; } = "";
        public float TaskConfidence { get; set; }
    }

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _ml = new MLContext(seed: 1);
        _ml.Log += (_, e) => { lock (Log) Log.Add(e.Message); };
        _rows = TinyData.Rows(0, "a", "b", n: 60, seed: 4).Concat(TinyData.Rows(1, "c", "d", n: 60, seed: 4)).ToList();
        _model = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions())
            .Fit(_ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList()));
    }

    [ClassCleanup]
    public static void Cleanup() => _model?.Dispose();

    private static IDataView WithoutTaskId(IEnumerable<TinyData.TextRow> rows) =>
        _ml.Data.LoadFromEnumerable(rows.Select(r => new TinyData.FeaturesOnly { Features = r.Features }).ToList());

    private static List<Inferred> Score(ITransformer model, IDataView data) =>
        _ml.Data.CreateEnumerable<Inferred>(model.Transform(data), reuseRowObject: false).ToList();

    private static void AssertClose(float[] expected, float[] actual, string message)
    {
        Assert.AreEqual(expected.Length, actual.Length, message);
        for (int c = 0; c < expected.Length; c++) Assert.AreEqual(expected[c], actual[c], 1e-5, message);
    }

    [TestMethod]
    public void RowsWithoutTaskIdAreScoredByTheirInferredTask()
    {
        var inferred = Score(_model, WithoutTaskId(_rows));
        Assert.AreEqual(_rows.Count, inferred.Count);
        CollectionAssert.IsSubsetOf(inferred.Select(p => p.PredictedTask).Distinct().ToArray(), new[] { "t0", "t1" });
        Assert.IsTrue(inferred.All(p => p.TaskConfidence > 0 && p.TaskConfidence <= 1), "confidence in (0, 1]");

        // Each inferred row gets what its inferred task's view gives it (to float rounding: inference computes the
        // first layer as (x σᵀ) ⊙ m_t + x A_tᵀ, the view as x θ_tᵀ).
        foreach (var task in _model.Tasks)
        {
            using var view = _model.ForTask(task);
            var byTask = _ml.Data.CreateEnumerable<TinyData.TextPrediction>(view.Transform(WithoutTaskId(_rows)), reuseRowObject: false).ToList();
            for (int i = 0; i < _rows.Count; i++)
                if (inferred[i].PredictedTask == task)
                {
                    AssertClose(byTask[i].Score, inferred[i].Score, $"row {i}");
                    Assert.AreEqual(byTask[i].PredictedLabel, inferred[i].PredictedLabel);
                }
        }
    }

    [TestMethod]
    public void RowsWithTaskIdKeepTheirScoresAndOnlyEmptyIdsAreInferred()
    {
        var withIds = _ml.Data.LoadFromEnumerable(_rows);
        var expected = Score(_model, withIds);
        Assert.IsTrue(expected.Select((p, i) => p.PredictedTask == _rows[i].TaskId && p.TaskConfidence == 1).All(x => x));
        // Identical to what each task's own view gives (the path that never infers).
        using (var t1 = _model.ForTask("t1"))
        {
            var own = TinyData.Scores(t1.Transform(_ml.Data.LoadFromEnumerable(_rows.Where(r => r.TaskId == "t1").ToList())));
            SurfaceTests.AssertSame(own, expected.Where((_, i) => _rows[i].TaskId == "t1").Select(p => p.Score).ToList());
        }

        // Every third row loses its id: those are inferred, the others are unchanged.
        var partial = _rows.Select((r, i) => new TinyData.TextRow { Features = r.Features, Label = r.Label, TaskId = i % 3 == 0 ? "" : r.TaskId }).ToList();
        var mixed = Score(_model, _ml.Data.LoadFromEnumerable(partial));
        var inferred = Score(_model, WithoutTaskId(_rows));
        for (int i = 0; i < _rows.Count; i++)
        {
            var want = i % 3 == 0 ? inferred[i] : expected[i];
            // Scored in other groups than above, so equal to float rounding (a product's sums depend on the batch).
            AssertClose(want.Score, mixed[i].Score, $"row {i}");
            Assert.AreEqual(want.PredictedTask, mixed[i].PredictedTask, $"row {i}");
            Assert.AreEqual(want.TaskConfidence, mixed[i].TaskConfidence, 1e-5, $"row {i}");
        }
    }

    [TestMethod]
    public void PredictionEngineSaveLoadAndPipelinesInferToo()
    {
        var expected = Score(_model, WithoutTaskId(_rows));

        var engine = _ml.Model.CreatePredictionEngine<TinyData.FeaturesOnly, Inferred>(_model, new PredictionEngineOptions { OwnsTransformer = false });
        for (int i = 0; i < _rows.Count; i++)
        {
            var one = engine.Predict(new TinyData.FeaturesOnly { Features = _rows[i].Features });
            Assert.AreEqual(expected[i].PredictedTask, one.PredictedTask, $"row {i}");
            Assert.AreEqual(expected[i].PredictedLabel, one.PredictedLabel, $"row {i}");
            AssertClose(expected[i].Score, one.Score, $"row {i}");
        }

        using var stream = new MemoryStream();
        _ml.Model.Save(_model, WithoutTaskId(_rows).Schema, stream);
        stream.Position = 0;
        var ml2 = new MLContext();
        using var loaded = (ApdTransformer)ml2.Model.Load(stream, out _);
        var afterLoad = Score(loaded, WithoutTaskId(_rows));
        CollectionAssert.AreEqual(expected.Select(p => p.PredictedTask).ToArray(), afterLoad.Select(p => p.PredictedTask).ToArray());
        SurfaceTests.AssertSame(expected.Select(p => p.Score).ToList(), afterLoad.Select(p => p.Score).ToList());

        // In a pipeline: the features come from another transform, and the chain saves and loads.
        var options = TinyData.FastOptions();
        options.FeatureColumnName = "Pixels";
        var train = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList());
        var chain = _ml.Transforms.CopyColumns("Pixels", "Features").Append(_ml.MulticlassClassification.Trainers.Apd(options)).Fit(train);
        var chained = Score(chain, WithoutTaskId(_rows));
        Assert.AreEqual(_rows.Count, chained.Count);
        using var chainStream = new MemoryStream();
        _ml.Model.Save(chain, WithoutTaskId(_rows).Schema, chainStream);
        chainStream.Position = 0;
        var reloaded = Score(ml2.Model.Load(chainStream, out _), WithoutTaskId(_rows));
        CollectionAssert.AreEqual(chained.Select(p => p.PredictedTask).ToArray(), reloaded.Select(p => p.PredictedTask).ToArray());
        chain.LastTransformer.Dispose();
    }

    [TestMethod]
    public void InferenceIsLoggedOncePerTransform()
    {
        int Count() { lock (Log) return Log.Count(m => m.Contains("task is inferred")); }
        int before = Count();
        var scored = _model.Transform(WithoutTaskId(_rows));
        TinyData.Scores(scored);
        TinyData.Scores(scored);
        Assert.AreEqual(before + 1, Count());
        TinyData.Scores(_model.Transform(_ml.Data.LoadFromEnumerable(_rows)));
        Assert.AreEqual(before + 1, Count(), "rows with task ids infer nothing");
    }

    [TestMethod]
    public void RequiringTaskIdsGivesTheMissingColumnAndEmptyIdErrors()
    {
        var options = TinyData.FastOptions();
        options.RequireTaskId = true;
        using var strict = _ml.MulticlassClassification.Trainers.Apd(options)
            .Fit(_ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList()));
        Assert.IsTrue(strict.RequireTaskId);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => strict.Transform(WithoutTaskId(_rows)));
        StringAssert.Contains(e.Message, "task id column 'TaskId'");
        StringAssert.Contains(e.Message, "(t0, t1)");
        StringAssert.Contains(e.Message, "ForTask");
        StringAssert.Contains(e.Message, "RequireTaskId");
        var empty = _ml.Data.LoadFromEnumerable(_rows.Take(3).Select(r => new TinyData.TextRow { Features = r.Features, Label = r.Label, TaskId = "" }).ToList());
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => TinyData.Scores(strict.Transform(empty)));
        StringAssert.Contains(error.Message, "Row 0");
        StringAssert.Contains(error.Message, "task id ''");
        StringAssert.Contains(error.Message, "'t0', 't1'");
        Assert.IsFalse(strict.Transform(_ml.Data.LoadFromEnumerable(_rows)).Schema.GetColumnOrNull("PredictedTask").HasValue);
        // ForTask still predicts one task without ids.
        using var view = strict.ForTask("t0");
        Assert.AreEqual(_rows.Count, TinyData.Scores(view.Transform(WithoutTaskId(_rows))).Count);
    }

    [TestMethod]
    public void OutputColumnNamesAreConfigurableAndTheEstimatorShapeAgrees()
    {
        var options = TinyData.FastOptions();
        options.ScoreColumnName = "Probabilities";
        options.PredictedLabelColumnName = "Class";
        options.PredictedTaskColumnName = "Which";
        options.TaskConfidenceColumnName = "Sure";
        var train = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b").Concat(TinyData.Rows(1, "c", "d")).ToList());
        var trainer = _ml.MulticlassClassification.Trainers.Apd(options);
        using var model = trainer.Fit(train);
        var scored = model.Transform(WithoutTaskId(_rows));
        foreach (var name in new[] { "Probabilities", "Class", "Which", "Sure" })
            Assert.IsTrue(scored.Schema.GetColumnOrNull(name).HasValue, name);
        Assert.IsFalse(scored.Schema.GetColumnOrNull("Score").HasValue);
        Assert.AreEqual(_rows.Count, TinyData.Column<float>(scored, "Sure").Count);

        // The estimator (whose next Fit continues this model) announces the same columns for input without task ids.
        var unrouted = _ml.Data.LoadFromEnumerable(_rows.Select(r => new Labelled { Features = r.Features, Label = r.Label }).ToList());
        var shape = trainer.GetOutputSchema(Microsoft.ML.Apd.Persistence.MLNetInternal.ShapeOf(unrouted.Schema));
        foreach (var column in model.Transform(unrouted).Schema)
            Assert.IsTrue(shape.Any(c => c.Name == column.Name), column.Name);
        Assert.IsInstanceOfType<TextDataViewType>(shape.Single(c => c.Name == "Which").ItemType);
        Assert.AreEqual(NumberDataViewType.Single, shape.Single(c => c.Name == "Sure").ItemType);
    }
}
