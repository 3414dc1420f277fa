using System.Globalization;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

// Scores an APD model exported to ONNX (../Export) with ONNX Runtime alone — no ML.NET, no TorchSharp — as a service
// replica would, and checks its predictions against what Transform predicted for the same images.
// Usage: dotnet run --project examples/OnnxScoring/Score [-- path/to/apd-model.onnx]
string path = args.Length > 0 ? args[0] : Path.Combine("apd-results", "apd-model.onnx");
string expectedPath = Path.ChangeExtension(path, ".expected.tsv");
if (!File.Exists(path) || !File.Exists(expectedPath))
{
    Console.Error.WriteLine($"No exported model at {Path.GetFullPath(path)}. Export one first: dotnet run --project examples/OnnxScoring/Export");
    return 1;
}

// The requests the exporter scored with Transform: task, test image, Transform's label and scores.
var expected = File.ReadAllLines(expectedPath).Select(line => line.Split('\t')).ToList();
var (_, test) = FashionMnist.LoadSubset();
int n = expected.Count;

using var session = new InferenceSession(path);
// One batch: features [N, 784], task ids [N, 1] (text), and the passed-through Image column [N, 1].
var features = new DenseTensor<float>(expected.SelectMany(e => test.Images[int.Parse(e[1], CultureInfo.InvariantCulture)]).ToArray(), [n, FashionMnist.ImageSize]);
var taskIds = new DenseTensor<string>(expected.Select(e => e[0]).ToArray(), [n, 1]);
var images = new DenseTensor<int>(expected.Select(e => int.Parse(e[1], CultureInfo.InvariantCulture)).ToArray(), [n, 1]);
using var results = session.Run([
    NamedOnnxValue.CreateFromTensor("Features", features),
    NamedOnnxValue.CreateFromTensor("TaskId", taskIds),
    NamedOnnxValue.CreateFromTensor("Image", images),
]);
// ML.NET names the outputs after the columns, with a suffix (".output").
Tensor<T> Output<T>(string column) => results.Single(r => r.Name.StartsWith(column + ".", StringComparison.Ordinal)).AsTensor<T>();
var labels = Output<string>("PredictedLabel");
var scores = Output<float>("Score"); // [N, most classes of any task]: 0 past a task's own classes

int same = 0;
double maxDifference = 0;
for (int r = 0; r < n; r++)
{
    var transformScores = expected[r][3].Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
    float best = 0;
    for (int c = 0; c < scores.Dimensions[1]; c++)
    {
        float expectedScore = c < transformScores.Length ? transformScores[c] : 0;
        maxDifference = Math.Max(maxDifference, Math.Abs(scores[r, c] - expectedScore));
        best = Math.Max(best, scores[r, c]);
    }
    bool agrees = labels[r, 0] == expected[r][2];
    if (agrees) same++;
    Console.WriteLine($"  [{expected[r][0]}] image {expected[r][1],4}: ONNX Runtime predicts {labels[r, 0],-12} ({best:P0})  Transform {expected[r][2]}{(agrees ? "" : "  DIFFERENT")}");
}
Console.WriteLine($"{same} of {n} predicted labels equal Transform's; largest score difference {maxDifference:G2}.");
return same == n && maxDifference <= 1e-5 ? 0 : 2;
