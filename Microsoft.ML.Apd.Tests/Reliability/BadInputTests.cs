using Microsoft.ML;
using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Reliability;

/// <summary>
/// Bad input gets a clear error naming the column, task or option and what was expected (README, "Errors and limits"),
/// before any training; never a native crash, a hang or a silently wrong model — and nothing earlier is lost. Every bad
/// input is one named <see cref="Case"/>; each runs as its own test and checks the exception's type, that its message
/// names what is wrong, and afterwards that the shared model and its trainer are exactly as before.
/// </summary>
[TestClass]
public sealed class BadInputTests
{
    private static MLContext _ml = null!;
    private static ApdTrainer _trainer = null!;
    private static ApdTransformer _model = null!; // tasks t0, t1 on 8 features, the last model of _trainer
    private static ApdTransformer _strict = null!; // the same tasks with Options.RequireTaskId: no task inference
    private static IDataView _probe = null!;
    private static List<float[]> _before = null!;
    /// <summary>Trainers the cases create; a rejected Fit must leave each without a model.</summary>
    private static readonly List<ApdTrainer> Fresh = new();

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _ml = new MLContext(seed: 1);
        var data = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", 40).Concat(TinyData.Rows(1, "c", "d", 40)).ToList());
        _trainer = _ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options());
        _model = _trainer.Fit(data);
        var strict = ReliabilityData.Options();
        strict.RequireTaskId = true;
        _strict = _ml.MulticlassClassification.Trainers.Apd(strict).Fit(data);
        _probe = data;
        _before = ReliabilityData.Scores(_model.Transform(_probe));
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        _model?.Dispose();
        _strict?.Dispose();
    }

    /// <summary>One bad input: what is done, the exception expected (exactly, or any subclass when
    /// <paramref name="Exact"/> is false), what its message must mention, and its ParamName when given.</summary>
    public sealed record Case(string Name, Type Expected, bool Exact, Action Act, string[] Mentions, string? ParamName = null);

    private static Case Exactly<T>(string name, Action act, params string[] mentions) where T : Exception => new(name, typeof(T), true, act, mentions);

    /// <summary>An option change rejected when the trainer is created: ArgumentException (or ArgumentOutOfRange…)
    /// whose ParamName and message name the option.</summary>
    private static Case Option(string name, Action<ApdTrainer.Options> change, string option, params string[] mentions) =>
        new("option: " + name, typeof(ArgumentException), false, () =>
        {
            var o = ReliabilityData.Options();
            change(o);
            _ml.MulticlassClassification.Trainers.Apd(o);
        }, mentions.Prepend(option).ToArray(), option);

    private static ApdTrainer Trainer(ApdTrainer.Options? options = null)
    {
        var trainer = _ml.MulticlassClassification.Trainers.Apd(options ?? ReliabilityData.Options());
        Fresh.Add(trainer);
        return trainer;
    }

    private const string LabelTypeExpected = "key, text, boolean or numeric scalar";
    private const string Lone = "x\uD800";

    private static IEnumerable<Case> Cases()
    {
        // Options, rejected when the trainer is created.
        yield return Option("NumberOfEpochs = -1", o => o.NumberOfEpochs = -1, "NumberOfEpochs");
        yield return Option("NumberOfEpochs = 0", o => o.NumberOfEpochs = 0, "NumberOfEpochs");
        yield return Option("BatchSize = 0", o => o.BatchSize = 0, "BatchSize");
        yield return Option("BatchSize = -5", o => o.BatchSize = -5, "BatchSize");
        yield return Option("SparsityStrength < 0", o => o.SparsityStrength = -1e-4, "SparsityStrength");
        yield return Option("SparsityStrength = ∞", o => o.SparsityStrength = double.PositiveInfinity, "SparsityStrength");
        yield return Option("RetroactiveStrength < 0", o => o.RetroactiveStrength = -1, "RetroactiveStrength");
        yield return Option("RetroactiveStrength = NaN", o => o.RetroactiveStrength = double.NaN, "RetroactiveStrength");
        yield return Option("MaskSparsityStrength = NaN", o => o.MaskSparsityStrength = double.NaN, "MaskSparsityStrength");
        yield return Option("WeightDecay = ∞", o => o.WeightDecay = double.PositiveInfinity, "WeightDecay");
        yield return Option("WeightDecay < 0", o => o.WeightDecay = -1, "WeightDecay");
        yield return Option("HiddenLayerSizes empty", o => o.HiddenLayerSizes = Array.Empty<int>(), "HiddenLayerSizes");
        yield return Option("HiddenLayerSizes null", o => o.HiddenLayerSizes = null!, "HiddenLayerSizes");
        yield return Option("HiddenLayerSizes has 0", o => o.HiddenLayerSizes = new[] { 8, 0 }, "HiddenLayerSizes", "[1]");
        yield return Option("HiddenLayerSizes negative", o => o.HiddenLayerSizes = new[] { -3 }, "HiddenLayerSizes", "[0]");
        yield return Option("1,025 hidden layers", o => o.HiddenLayerSizes = Enumerable.Repeat(2, 1025).ToArray(), "HiddenLayerSizes", "1025 layers");
        yield return Option("HiddenLayerSizes {1e6, 1e6}", o => o.HiddenLayerSizes = new[] { 1_000_000, 1_000_000 }, "HiddenLayerSizes", "HiddenLayerSizes[1]", "268,435,456");
        yield return Option("network larger than a model holds", o => o.HiddenLayerSizes = Enumerable.Repeat(16_000, 20).ToArray(), "HiddenLayerSizes", "GiB");
        yield return Option("ConsolidationInterval = 0", o => o.ConsolidationInterval = 0, "ConsolidationInterval");
        yield return Option("LearningRate < 0", o => o.LearningRate = -1, "LearningRate");
        yield return Option("LearningRate = 0", o => o.LearningRate = 0, "LearningRate");
        yield return Option("LearningRate = NaN", o => o.LearningRate = double.NaN, "LearningRate");
        yield return Option("LearningRate = ∞", o => o.LearningRate = double.PositiveInfinity, "LearningRate");
        yield return Option("LearningRateDecay = 0", o => o.LearningRateDecay = 0, "LearningRateDecay");
        yield return Option("LearningRateDecay > 1", o => o.LearningRateDecay = 1.5, "LearningRateDecay");
        yield return Option("GradientScale = 0", o => o.GradientScale = 0, "GradientScale");
        yield return Option("GradientScale = NaN", o => o.GradientScale = double.NaN, "GradientScale");
        yield return Option("InitialClusterCount = 0", o => o.InitialClusterCount = 0, "InitialClusterCount");
        yield return Option("ClusterCountIncrement < 0", o => o.ClusterCountIncrement = -1, "ClusterCountIncrement");
        yield return Option("ConsolidationThreshold < 0", o => o.ConsolidationThreshold = -1, "ConsolidationThreshold");
        yield return Option("RetroactiveUpdate undefined", o => o.RetroactiveUpdate = (RetroactiveUpdateMode)7, "RetroactiveUpdate");
        yield return Option("LabelColumnName blank", o => o.LabelColumnName = " ", "LabelColumnName");
        yield return Option("FeatureColumnName empty", o => o.FeatureColumnName = "", "FeatureColumnName");
        yield return Option("TaskIdColumnName null", o => o.TaskIdColumnName = null!, "TaskIdColumnName");
        yield return Option("LabelColumnName lone surrogate", o => o.LabelColumnName = Lone, "LabelColumnName", "UTF-16");
        yield return Option("TaskIdColumnName = LabelColumnName", o => o.TaskIdColumnName = "Label", "TaskIdColumnName", "also the label column");
        yield return Option("TaskIdColumnName = FeatureColumnName", o => o.TaskIdColumnName = "Features", "TaskIdColumnName", "also the feature column");
        yield return Option("LabelColumnName = FeatureColumnName", o => o.LabelColumnName = "Features", "LabelColumnName", "different columns");
        yield return Option("TaskId empty", o => o.TaskId = "", "TaskId");
        yield return Option("TaskId white space", o => o.TaskId = "  ", "TaskId", "white space");
        yield return Option("TaskId lone surrogate", o => o.TaskId = Lone, "TaskId", "UTF-16");
        yield return Option("ConvolutionKernelSize = 0", o => { o.ConvolutionLayers = new[] { 4 }; o.ImageShape = (1, 4, 4); o.ConvolutionKernelSize = 0; }, "ConvolutionKernelSize");
        yield return Option("image too small", o => { o.ConvolutionLayers = new[] { 4, 4 }; o.ImageShape = (1, 6, 6); }, "ImageShape", "too small");
        yield return Option("ConvolutionLayers without ImageShape", o => o.ConvolutionLayers = new[] { 4 }, "ImageShape", "ConvolutionLayers");
        yield return Option("ConvolutionLayers has 0", o => { o.ConvolutionLayers = new[] { 0 }; o.ImageShape = (1, 8, 8); }, "ConvolutionLayers");
        yield return Option("ImageShape dimension 0", o => o.ImageShape = (0, 2, 4), "ImageShape");
        yield return Option("ImageShape over int.MaxValue values", o => o.ImageShape = (50_000, 50_000, 50_000), "ImageShape", "at most");
        yield return Option("convolution layer too large", o => { o.ImageShape = (1, 20_000, 20_000); o.ConvolutionLayers = new[] { 1_000_000 }; o.ConvolutionKernelSize = 30; }, "ConvolutionLayers", "ConvolutionLayers[0]");
        yield return new("option: catalog batchSize = 0", typeof(ArgumentException), false, () => _ml.MulticlassClassification.Trainers.Apd(batchSize: 0), new[] { "BatchSize" }, "BatchSize");
        yield return new("option: catalog taskIdColumnName = labelColumnName", typeof(ArgumentException), false,
            () => _ml.MulticlassClassification.Trainers.Apd(taskIdColumnName: "Label"), new[] { "TaskIdColumnName" }, "TaskIdColumnName");

        // Schema: missing columns and wrong types are named with what was expected.
        yield return Exactly<ArgumentOutOfRangeException>("schema: missing feature column", () => _ml.MulticlassClassification.Trainers.Apd(featureColumnName: "Pixels").Fit(Load(Rows(10))), "feature column 'Pixels'");
        yield return Exactly<ArgumentOutOfRangeException>("schema: missing label column", () => _ml.MulticlassClassification.Trainers.Apd(labelColumnName: "Class").Fit(Load(Rows(10))), "label column 'Class'");
        yield return Exactly<ArgumentOutOfRangeException>("schema: missing label column in GetOutputSchema", () => _ml.MulticlassClassification.Trainers.Apd(labelColumnName: "Class")
            .GetOutputSchema(Microsoft.ML.Apd.Persistence.MLNetInternal.ShapeOf(Load(Rows(10)).Schema)), "label column 'Class'");
        // (Without RequireTaskId a multi-task model infers the task of such rows: TaskInferenceTests.)
        yield return Exactly<ArgumentOutOfRangeException>("schema: multi-task model requiring task ids without task id column", () => _strict.Transform(Load(Rows(10))), "task id column 'TaskId'", "(t0, t1)", "ForTask");
        yield return Exactly<ArgumentOutOfRangeException>("schema: variable-size features", () => Trainer().Fit(Load(new[] { new VariableRow { Features = new float[3], Label = "x" } })), "feature column 'Features'", "known-size vector of Single");
        yield return Exactly<ArgumentOutOfRangeException>("schema: vector label", () => Trainer().Fit(Load(new[] { new VectorLabelRow() })), "label column 'Label'", LabelTypeExpected);
        yield return Exactly<ArgumentOutOfRangeException>("schema: DateTime label", () => Trainer().Fit(Load(new[] { new DateLabelRow() })), "label column 'Label'", LabelTypeExpected);
        yield return Exactly<ArgumentOutOfRangeException>("schema: scalar features", () =>
        {
            var rows = Load(new[] { new FloatLabelRow() });
            Trainer().Fit(_ml.Transforms.CopyColumns("Features", "Label").Fit(rows).Transform(rows));
        }, "feature column 'Features'", "known-size vector of Single");
        yield return Exactly<ArgumentOutOfRangeException>("schema: label type differs from the model's", () => Trainer().Fit(Load(new[] { new FloatLabelRow(), new FloatLabelRow { Label = 1 } }), "t9", _model), "label column 'Label'", "earlier tasks");
        yield return Exactly<ArgumentOutOfRangeException>("schema: numeric task id column", () => Trainer().Fit(Load(new[] { new NumericTaskRow(), new NumericTaskRow { Label = "y" } })), "task id column 'TaskId'", "String");
        yield return Exactly<ArgumentOutOfRangeException>("schema: wider features when continuing", () => Trainer().Fit(Widened(), "t9", _model), "feature column 'Features'", "8 Single values");
        yield return Exactly<ArgumentOutOfRangeException>("schema: wider features when predicting", () => _model.ForTask("t0").Transform(Widened()), "feature column 'Features'", "8 Single values");
        yield return Exactly<ArgumentOutOfRangeException>("schema: wider features in a PredictionEngine", () => _ml.Model.CreatePredictionEngine<WideRow, TinyData.TextPrediction>(_model.ForTask("t0")), "feature column 'Features'", "8 Single values");
        yield return Exactly<ArgumentOutOfRangeException>("schema: features not C·H·W of ImageShape", () => Trainer(new ApdTrainer.Options
            { ConvolutionLayers = new[] { 2 }, ConvolutionKernelSize = 3, ImageShape = (1, 4, 4), HiddenLayerSizes = new[] { 4 } }).Fit(Load(Rows(10))), "feature column 'Features'", "ImageShape", "needs 16 values");
        yield return Exactly<ArgumentOutOfRangeException>("schema: ImageShape without convolutions not C·H·W", () =>
        {
            var o = ReliabilityData.Options();
            o.ImageShape = (1, 3, 3);
            Trainer(o).Fit(Load(Rows(10)));
        }, "feature column 'Features'", "ImageShape", "needs 9 values");
        yield return Exactly<ArgumentOutOfRangeException>("limit: first layer too large for the feature size", () =>
        {
            var o = ReliabilityData.Options();
            o.HiddenLayerSizes = new[] { 40_000_000 }; // 8 × 4e7 = 3.2e8 weights > 2^28
            Trainer(o).Fit(Load(Rows(10)));
        }, "HiddenLayerSizes[0]", "268,435,456");

        // Data.
        yield return Exactly<ArgumentException>("data: empty", () => Trainer().Fit(Load(Array.Empty<Row>())), "no usable rows", "'Features'", "'Label'");
        yield return Exactly<ArgumentException>("data: a single class", () => Trainer().Fit(Load(Rows(10, label: _ => "only")), "solo"), "Task 'solo'", "1 distinct value", "at least two classes");
        yield return Exactly<ArgumentException>("data: a single class when continuing", () => Trainer().Fit(Load(Rows(10, label: _ => "only")), "solo", _model), "Task 'solo'", "1 distinct value");
        yield return Exactly<ArgumentException>("data: every feature NaN", () => Trainer().Fit(Load(Rows(10, features: _ => Enumerable.Repeat(float.NaN, TinyData.Size).ToArray()))), "no usable rows", "10 rows NaN or infinite features");
        yield return Exactly<ArgumentException>("data: every feature +∞", () => Trainer().Fit(Load(Rows(7, features: _ => Enumerable.Repeat(float.PositiveInfinity, TinyData.Size).ToArray()))), "no usable rows", "7 rows NaN or infinite features");
        yield return Exactly<ArgumentException>("data: every label NaN or ∞", () => Trainer().Fit(Load(Enumerable.Range(0, 6).Select(i => new FloatLabelRow { Label = i % 2 == 0 ? float.NaN : float.PositiveInfinity }))), "no usable rows", "6 rows had a missing or non-finite label");
        yield return Exactly<ArgumentException>("data: every key label missing", () =>
        {
            var rows = Load(Rows(4));
            var otherLabels = Load(new[] { new LabelOnly { Label = "p" }, new LabelOnly { Label = "q" } });
            Trainer().Fit(_ml.Transforms.Conversion.MapValueToKey("Label", keyData: otherLabels).Fit(rows).Transform(rows));
        }, "no usable rows", "4 rows had a missing or non-finite label");
        yield return Exactly<ArgumentException>("data: lone surrogate in a text label", () => Trainer().Fit(Load(Rows(10, label: i => i % 2 == 0 ? "a" : Lone)), "t9"), "label 'x", "label column 'Label'", "UTF-16");
        yield return Exactly<ArgumentException>("data: lone surrogate in the task id column", () => Trainer().Fit(Tasks(Lone)), "task id column 'TaskId'", "UTF-16");
        yield return Exactly<InvalidOperationException>("data: empty task id in training", () => Trainer().Fit(Tasks("")), "empty task id", "'TaskId'");
        yield return Exactly<InvalidOperationException>("data: white-space task id in training", () => Trainer().Fit(Tasks(" \t")), "empty task id", "'TaskId'");

        // Tasks: learned once; unknown tasks are named with the known ones.
        yield return Exactly<InvalidOperationException>("task: explicit task id already learned", () => Trainer().Fit(Load(Rows(10)), "t1", _model), "'t1'", "already has a task");
        yield return Exactly<InvalidOperationException>("task: task id column value already learned", () => Trainer().Fit(_ml.Data.LoadFromEnumerable(TinyData.Rows(1, "c", "zzz", 10).ToList()), _model), "'t1'", "already has a task");
        yield return Exactly<InvalidOperationException>("task: the trainer's own last model already has it", () => _trainer.Fit(Load(Rows(10)), "t0"), "'t0'", "already has a task");
        yield return Exactly<ArgumentException>("task: Forget unknown", () => _model.Forget("t7"), "no task 't7'", "'t0', 't1'");
        yield return Exactly<ArgumentException>("task: ForTask unknown", () => _model.ForTask("t7"), "no task 't7'", "'t0', 't1'");
        yield return Exactly<ArgumentException>("task: GetClassNames unknown", () => _model.GetClassNames("t7"), "no task 't7'");
        yield return Exactly<ArgumentException>("task: ForTask white space", () => _model.ForTask(" "), "no task ' '");
        yield return Exactly<InvalidOperationException>("task: Forget a view's own task", () => _model.ForTask("t0").Forget("t0"), "This view predicts task 't0'");
        yield return Exactly<InvalidOperationException>("task: unknown task id at prediction", () => TinyData.Scores(_model.Transform(_ml.Data.LoadFromEnumerable(TinyData.Rows(5, "a", "b", 3).ToList()))), "task id 't5'", "column 'TaskId'", "'t0', 't1'");
        yield return Exactly<InvalidOperationException>("task: empty task id at prediction requiring task ids", () => TinyData.Scores(_strict.Transform(_ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", 3).Select(r => { r.TaskId = ""; return r; }).ToList()))), "Row 0", "task id ''", "'t0', 't1'");
        yield return Exactly<InvalidOperationException>("task: unknown task id in a PredictionEngine", () => _ml.Model.CreatePredictionEngine<TinyData.TextRow, TinyData.TextPrediction>(_model)
            .Predict(new TinyData.TextRow { Features = new float[TinyData.Size], TaskId = "nope" }), "task id 'nope'");
        yield return Exactly<ArgumentException>("task: Fit with a white-space task id", () => Trainer().Fit(Load(Rows(10)), "   "), "white space");
        yield return Exactly<ArgumentException>("task: Fit with a lone surrogate task id", () => Trainer().Fit(Load(Rows(10)), Lone), "UTF-16");
        yield return Exactly<ArgumentException>("task: continue with a white-space task id", () => Trainer().Fit(Load(Rows(10)), "\t", _model), "white space");

        // Null arguments and disposed models.
        yield return Exactly<ArgumentNullException>("null: Fit data", () => Trainer().Fit(null!), "data");
        yield return Exactly<ArgumentNullException>("null: previous model", () => Trainer().Fit(Load(Rows(4)), "x", (ApdTransformer)null!), "previous");
        yield return Exactly<ArgumentNullException>("null: task id", () => Trainer().Fit(Load(Rows(4)), (string)null!), "taskId");
        yield return Exactly<ArgumentException>("null: empty task id", () => Trainer().Fit(Load(Rows(4)), ""), "taskId");
        yield return Exactly<ArgumentNullException>("null: Transform input", () => _model.Transform(null!), "input");
        yield return Exactly<ArgumentNullException>("null: ForTask", () => _model.ForTask(null!), "task");
        yield return Exactly<ArgumentNullException>("null: options", () => _ml.MulticlassClassification.Trainers.Apd((ApdTrainer.Options)null!), "options");
        yield return Exactly<ObjectDisposedException>("disposed: GetClassNames", () => Disposed().GetClassNames("t0"), nameof(ApdTransformer));
        yield return Exactly<ObjectDisposedException>("disposed: Transform", () => Disposed().Transform(Load(Rows(2))), nameof(ApdTransformer));
        yield return Exactly<ObjectDisposedException>("disposed: continue from", () => Trainer().Fit(Load(Rows(10)), "t9", Disposed()), nameof(ApdTransformer));
    }

    private static readonly Dictionary<string, Case> All = Cases().ToDictionary(c => c.Name);

    public static IEnumerable<object[]> CaseNames => Cases().Select(c => new object[] { c.Name });

    [TestMethod]
    public void TheSuiteCoversAtLeast80DistinctBadInputs()
    {
        var names = Cases().Select(c => c.Name).ToList();
        Assert.AreEqual(names.Count, names.Distinct().Count(), "case names are unique");
        Assert.IsTrue(names.Count >= 80, $"{names.Count} bad inputs");
    }

    [TestMethod]
    [DynamicData(nameof(CaseNames))]
    public void IsRejectedClearlyAndLosesNothing(string name)
    {
        var c = All[name];
        Exception? thrown = null;
        try { c.Act(); }
        catch (Exception e) { thrown = e; }
        Assert.IsNotNull(thrown, $"{name}: no exception");
        if (c.Exact) Assert.AreEqual(c.Expected, thrown.GetType(), thrown.ToString());
        else Assert.IsInstanceOfType(thrown, c.Expected, thrown.ToString());
        foreach (string m in c.Mentions) StringAssert.Contains(thrown.Message, m);
        if (c.ParamName is not null) Assert.AreEqual(c.ParamName, ((ArgumentException)thrown).ParamName);

        // Nothing earlier was lost: the shared model predicts exactly as before, its trainer still continues it, and
        // no trainer a case created kept a model from a rejected Fit.
        Assert.AreSame(_model, _trainer.LastModel);
        CollectionAssert.AreEqual(new[] { "t0", "t1" }, _model.Tasks.ToArray());
        ReliabilityData.AssertSameScores(_before, ReliabilityData.Scores(_model.Transform(_probe)));
        Assert.IsTrue(Fresh.All(t => t.LastModel is null), "a rejected Fit produced a model");
    }

    [TestMethod]
    public void NonFiniteRowsAreSkippedAndCountedInTheLog()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        float[] Bad(float v) { var f = new float[TinyData.Size]; f[3] = v; return f; }
        var rows = Rows(40).Select((r, i) => i switch
        {
            0 => new FloatLabelRow { Features = Bad(float.NaN), Label = 0 },
            1 => new FloatLabelRow { Features = Bad(float.PositiveInfinity), Label = 1 },
            2 => new FloatLabelRow { Features = Bad(float.NegativeInfinity), Label = 0 },
            3 => new FloatLabelRow { Features = r.Features, Label = float.NaN },
            4 => new FloatLabelRow { Features = r.Features, Label = float.PositiveInfinity },
            5 => new FloatLabelRow { Features = r.Features, Label = float.NegativeInfinity },
            _ => new FloatLabelRow { Features = r.Features, Label = i % 2 },
        }).ToList();
        using var model = ml.MulticlassClassification.Trainers.Apd(ReliabilityData.Options()).Fit(ml.Data.LoadFromEnumerable(rows), "f");
        CollectionAssert.AreEqual(new[] { "0", "1" }, model.GetClassNames("f").ToArray()); // ±Infinity did not become a class
        Assert.IsTrue(warnings.Any(w => w.Contains("Skipped 3 rows") && w.Contains("label column 'Label'")), string.Join("\n", warnings));
        Assert.IsTrue(warnings.Any(w => w.Contains("Skipped 3 rows") && w.Contains("feature column 'Features'")), string.Join("\n", warnings));
    }

    /// <summary>A disposed view of the shared model (the model itself stays usable).</summary>
    private static ApdTransformer Disposed()
    {
        var view = _model.ForTask("t0");
        view.Dispose();
        return view;
    }

    private sealed class Row
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        public string Label { get; set; } = "";
    }

    private sealed class FloatLabelRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        public float Label { get; set; }
    }

    private sealed class LabelOnly
    {
        public string Label { get; set; } = "";
    }

    private sealed class NumericTaskRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        public string Label { get; set; } = "x";
        public int TaskId { get; set; }
    }

    private sealed class WideRow
    {
        [VectorType(12)] public float[] Features { get; set; } = new float[12];
        public string Label { get; set; } = "";
    }

    private sealed class VariableRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
        public string Label { get; set; } = "";
    }

    private sealed class VectorLabelRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        [VectorType(2)] public float[] Label { get; set; } = new float[2];
    }

    private sealed class DateLabelRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = new float[TinyData.Size];
        public DateTime Label { get; set; }
    }

    private static IDataView Load<T>(IEnumerable<T> rows) where T : class => _ml.Data.LoadFromEnumerable(rows.ToList());

    private static IDataView Widened() => Load(Enumerable.Range(0, 4).Select(i => new WideRow { Label = i % 2 == 0 ? "x" : "y" }));

    private static IDataView Tasks(string taskId) =>
        _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "a", "b", 10).Select(r => { r.TaskId = taskId; return r; }).ToList());

    private static IEnumerable<Row> Rows(int n, Func<int, string>? label = null, Func<int, float[]>? features = null) =>
        Enumerable.Range(0, n).Select(i => new Row
        {
            Features = features?.Invoke(i) ?? Enumerable.Range(0, TinyData.Size).Select(d => (float)Math.Sin(i * 7 + d)).ToArray(),
            Label = label?.Invoke(i) ?? (i % 2 == 0 ? "x" : "y"),
        });
}
