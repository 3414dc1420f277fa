using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Apd;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Data;

// Exports the Quick start's APD model to ONNX, for serving with ONNX Runtime (see ../Score, and the README's
// "Serving at scale with ONNX"). Also writes what Transform predicts for a few test images of every task, so the
// ONNX Runtime program can show that it predicts the same.
// Usage: dotnet run --project examples/OnnxScoring/Export [-- path/to/apd-model.zip]
string path = args.Length > 0 ? args[0] : Path.Combine("apd-results", "apd-model.zip");
if (!File.Exists(path))
{
    Console.Error.WriteLine($"No model at {Path.GetFullPath(path)}. Train one first: dotnet run --project examples/ContinualFashionMnist");
    return 1;
}

var ml = new MLContext();
using var model = (ApdTransformer)ml.Model.Load(path, out _);

// A few test images per task, with the task id a request carries.
var (_, test) = FashionMnist.LoadSubset();
var requests = new List<Request>();
foreach (string task in model.Tasks)
{
    var classes = model.GetClassNames(task);
    requests.AddRange(Enumerable.Range(0, test.Count).Where(i => classes.Contains(FashionMnist.ClassNames[test.Labels[i]])).Take(3)
        .Select(i => new Request { Features = test.Images[i], TaskId = task, Image = i }));
}
var data = ml.Data.LoadFromEnumerable(requests);

// The graph's inputs are the columns of the data given here: Features, TaskId (and Image, passed through).
string onnxPath = Path.ChangeExtension(path, ".onnx");
using (var stream = File.Create(onnxPath))
    ml.Model.ConvertToOnnx(model, data, stream);
Console.WriteLine($"Wrote {onnxPath} ({new FileInfo(onnxPath).Length:N0} bytes; the .zip has {new FileInfo(path).Length:N0}) for {model.Tasks.Count} tasks ({string.Join(", ", model.Tasks)}).");

// Transform's predictions, one line per request: task, image, predicted label, scores.
string expectedPath = Path.ChangeExtension(path, ".expected.tsv");
var predictions = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).ToList();
using (var writer = new StreamWriter(expectedPath))
    for (int r = 0; r < requests.Count; r++)
    {
        var p = predictions[r];
        writer.WriteLine($"{requests[r].TaskId}\t{requests[r].Image}\t{p.PredictedLabel}\t{string.Join(',', p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))}");
        Console.WriteLine($"  [{requests[r].TaskId}] image {requests[r].Image,4}: Transform predicts {p.PredictedLabel,-12} ({p.Score.Max():P0})");
    }
Console.WriteLine($"Wrote {expectedPath}. Now score with ONNX Runtime alone: dotnet run --project examples/OnnxScoring/Score -- {onnxPath}");
return 0;

/// <summary>A request: one 28×28 image and the task it belongs to.</summary>
internal sealed class Request
{
    [VectorType(FashionMnist.ImageSize)]
    public float[] Features { get; set; } = [];
    public string TaskId { get; set; } = "";
    public int Image { get; set; }
}

internal sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
