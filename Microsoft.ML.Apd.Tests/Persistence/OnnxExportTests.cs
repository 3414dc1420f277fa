using Microsoft.ML.Apd.Tests.MLNet;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>
/// <c>mlContext.Model.ConvertToOnnx</c> on APD models: ONNX Runtime's outputs equal <c>Transform</c>'s (Score within
/// 1e-5, PredictedLabel identical on every row), for fully-connected and convolutional networks, one task and ten,
/// a <c>ForTask</c> view and routing by task id, alone and after a normalizer; ML.NET's <c>ApplyOnnxModel</c> agrees.
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private const float Tolerance = 1e-5f;
    private static MLContext _ml = null!;
    private static List<TinyData.TextRow> _tenTaskRows = null!;
    private static IDataView _tenTaskData = null!;
    private static ApdTransformer _tenTasks = null!;

    [ClassInitialize]
    public static void Train(TestContext _)
    {
        _ml = new MLContext(seed: 1);
        _tenTaskRows = Enumerable.Range(0, 10).SelectMany(t => TinyData.Rows(t, "a" + t % 3, "b", n: 60)).ToList();
        _tenTaskData = _ml.Data.LoadFromEnumerable(_tenTaskRows);
        // A wide consolidation threshold, so the tasks' τ share some elements and σ̃ is not empty on tiny data.
        var options = TinyData.FastOptions();
        options.ConsolidationThreshold = 0.5;
        _tenTasks = _ml.MulticlassClassification.Trainers.Apd(options).Fit(_tenTaskData);
    }

    [ClassCleanup]
    public static void Release() => _tenTasks?.Dispose();

    [TestMethod]
    public void OneTaskFullyConnectedModelScoresTheSameInOnnxRuntime()
    {
        // Without a task id column: a one-task model predicts its task for every row (fixed routing).
        var data = _ml.Data.LoadFromEnumerable(TinyData.Rows(0, "no", "yes").Select(r => new LabeledRow { Features = r.Features, Label = r.Label }).ToList());
        using var model = _ml.MulticlassClassification.Trainers.Apd(TinyData.FastOptions()).Fit(data);
        byte[] onnx = Export(model, data);
        AssertSameAsTransform(model.Transform(data), Score(onnx, data));
    }

    [TestMethod]
    public void EveryTaskOfATenTaskModelExportsAsAForTaskView()
    {
        // The model holds every part θ_t is composed of: sparse τ_t and, after consolidation, locally-shared σ̃_g.
        var layers = _tenTasks.Network.Layers;
        Assert.IsTrue(layers.Any(l => l.Slots.Values.Any(s => s.Adaptive.NonZeros > 0)), "τ");
        Assert.IsTrue(layers.Any(l => l.LocallyShared.Values.Any(s => s.NonZeros > 0)), "σ̃");
        foreach (var task in _tenTasks.Tasks)
        {
            using var view = _tenTasks.ForTask(task);
            var rows = Rows(task);
            var onnx = Score(Export(view, rows), rows);
            AssertSameAsTransform(view.Transform(rows), onnx);
            // The label, re-exposed as a key of the task's classes, as Transform does.
            CollectionAssert.AreEqual(TinyData.Column<uint>(view.Transform(rows), "Label"), onnx["Label"].Cast<uint>().ToList());
        }
    }

    [TestMethod]
    public void TenTaskModelRoutesEachRowByItsTaskId()
    {
        // Rows of every task interleaved; tasks have 2 or 3 classes, so Score is [N, 3] with 0 past a task's classes.
        var shuffled = _ml.Data.ShuffleRows(_tenTaskData, seed: 3);
        var onnx = Score(Export(_tenTasks, shuffled), shuffled);
        AssertSameAsTransform(_tenTasks.Transform(shuffled), onnx, padded: true);
        CollectionAssert.AreEqual(TinyData.Column<ReadOnlyMemory<char>>(shuffled, "TaskId").Select(t => t.ToString()).ToList(),
            onnx["PredictedTask"].Cast<string>().ToList());
        Assert.IsTrue(onnx["TaskConfidence"].Cast<float>().All(c => c == 1));
    }

    private static IDataView Rows(string task) => _ml.Data.LoadFromEnumerable(_tenTaskRows.Where(r => r.TaskId == task).ToList());

    private sealed class LabeledRow
    {
        [VectorType(TinyData.Size)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    // ── helpers ────────────────────────────────────────────────────────────────────────────────────────────────

    private static byte[] Export(ITransformer model, IDataView data)
    {
        using var stream = new MemoryStream();
        _ml.Model.ConvertToOnnx(model, data, stream);
        return stream.ToArray();
    }

    /// <summary>Every output of the ONNX model (by column name), row by row, fed every column of <paramref name="data"/>.</summary>
    private static Dictionary<string, List<object>> Score(byte[] onnx, IDataView data)
    {
        using var session = new InferenceSession(onnx);
        var inputs = session.InputMetadata.Select(input => Input(input.Key, input.Value, data)).ToList();
        using var results = session.Run(inputs);
        var outputs = new Dictionary<string, List<object>>();
        foreach (var result in results)
        {
            string name = result.Name[..result.Name.LastIndexOf('.')]; // ML.NET names outputs "Column.output"
            outputs[name] = result.Value switch
            {
                Tensor<float> t when t.Dimensions.Length == 2 && t.Dimensions[1] > 1 =>
                    Enumerable.Range(0, t.Dimensions[0]).Select(r => (object)Enumerable.Range(0, t.Dimensions[1]).Select(c => t[r, c]).ToArray()).ToList(),
                Tensor<float> t => t.ToArray().Cast<object>().ToList(),
                Tensor<string> t => t.ToArray().Cast<object>().ToList(),
                Tensor<uint> t => t.ToArray().Cast<object>().ToList(),
                Tensor<bool> t => t.ToArray().Cast<object>().ToList(),
                Tensor<long> t => t.ToArray().Cast<object>().ToList(),
                _ => new List<object>(),
            };
        }
        return outputs;
    }

    private static NamedOnnxValue Input(string name, NodeMetadata metadata, IDataView data)
    {
        var column = data.Schema[name];
        if (column.Type is VectorDataViewType vector)
        {
            var rows = Vectors(data, name);
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.SelectMany(r => r).ToArray(), [rows.Count, vector.Size]));
        }
        if (column.Type is TextDataViewType)
        {
            var rows = TinyData.Column<ReadOnlyMemory<char>>(data, name).Select(v => v.ToString()).ToArray();
            return NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(rows, [rows.Length, 1]));
        }
        throw new NotSupportedException($"Test helper: column '{name}' of type {column.Type} ({metadata.ElementType}).");
    }

    /// <summary>Every row's vector, copied as it is read (ML.NET reuses the buffer).</summary>
    private static List<float[]> Vectors(IDataView data, string name)
    {
        var column = data.Schema[name];
        var rows = new List<float[]>();
        using var cursor = data.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows.Add(value.DenseValues().ToArray());
        }
        return rows;
    }

    /// <summary>Score within 1e-5 and PredictedLabel identical on every row; with <paramref name="padded"/>, ONNX's Score
    /// is wider than a task's and holds 0 past its classes.</summary>
    private static void AssertSameAsTransform(IDataView transformed, Dictionary<string, List<object>> onnx, bool padded = false)
    {
        var expected = TinyData.Scores(transformed);
        var actual = onnx["Score"].Select(s => s as float[] ?? [(float)s]).ToList();
        Assert.AreEqual(expected.Count, actual.Count);
        for (int r = 0; r < expected.Count; r++)
        {
            if (!padded) Assert.AreEqual(expected[r].Length, actual[r].Length);
            for (int c = 0; c < actual[r].Length; c++)
                Assert.AreEqual(c < expected[r].Length ? expected[r][c] : 0f, actual[r][c], Tolerance, $"row {r}, class {c}");
        }
        var labels = TinyData.Column<ReadOnlyMemory<char>>(transformed, "PredictedLabel").Select(l => l.ToString()).ToList();
        CollectionAssert.AreEqual(labels, onnx["PredictedLabel"].Cast<string>().ToList());
    }
}
