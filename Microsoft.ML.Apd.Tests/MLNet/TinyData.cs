using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.MLNet;

/// <summary>Row types and tiny, separable synthetic data for fast ML.NET surface tests.</summary>
internal static class TinyData
{
    public const int Size = 8;

    public sealed class TextRow
    {
        [VectorType(Size)] public float[] Features { get; set; } = Array.Empty<float>();
        public string Label { get; set; } = "";
        public string TaskId { get; set; } = "";
    }

    public sealed class FeaturesOnly
    {
        [VectorType(Size)] public float[] Features { get; set; } = Array.Empty<float>();
    }

    public sealed class TextPrediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    /// <summary>Task <paramref name="task"/> (0, 1, …): label = (feature[task] &gt; 0 ? second : first).</summary>
    public static IEnumerable<TextRow> Rows(int task, string first, string second, int n = 120, int seed = 0)
    {
        var random = new Random(seed * 31 + task);
        for (int i = 0; i < n; i++)
        {
            var f = new float[Size];
            for (int d = 0; d < Size; d++) f[d] = (float)(random.NextDouble() * 2 - 1);
            yield return new TextRow { Features = f, Label = f[task % Size] > 0 ? second : first, TaskId = "t" + task };
        }
    }

    public static ApdTrainer.Options FastOptions() => new()
    {
        HiddenLayerSizes = new[] { 16 },
        NumberOfEpochs = 8,
        BatchSize = 20,
        LearningRate = 1e-2,
        Seed = 1,
    };

    public static List<T> Column<T>(IDataView view, string name)
    {
        var column = view.Schema[name];
        var values = new List<T>();
        using var cursor = view.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<T>(column);
        T value = default!;
        while (cursor.MoveNext())
        {
            getter(ref value);
            values.Add(value);
        }
        return values;
    }

    /// <summary>Every row's Score, copied as it is read: ML.NET reuses a VBuffer's array from row to row, so buffers
    /// collected first and copied afterwards would all hold the last row's values.</summary>
    public static List<float[]> Scores(IDataView view)
    {
        var column = view.Schema["Score"];
        var scores = new List<float[]>();
        using var cursor = view.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            scores.Add(value.DenseValues().ToArray());
        }
        return scores;
    }
}
