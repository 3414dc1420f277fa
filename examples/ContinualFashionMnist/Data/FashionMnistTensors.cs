using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// The whole Fashion-MNIST train and test sets as tensors, loaded once; every task is a view computed from them on
/// demand, so even 100 permuted tasks of the full data never live in memory together.
/// </summary>
public sealed class FashionMnistTensors : IDisposable
{
    private FashionMnistTensors(TaskData train, TaskData test, string source)
    {
        Train = train;
        Test = test;
        Source = source;
    }

    public TaskData Train { get; }
    public TaskData Test { get; }

    /// <summary>Where the images came from, for the console and results.json.</summary>
    public string Source { get; }

    public static FashionMnistTensors FromSubset()
    {
        var (train, test) = FashionMnist.LoadSubset();
        return new(ToTensors(train), ToTensors(test), "embedded subset (500 train / 100 test images per class)");
    }

    public static FashionMnistTensors FromDirectory(string directory) =>
        new(ToTensors(FashionMnist.Load(directory, train: true)), ToTensors(FashionMnist.Load(directory, train: false)),
            $"full Fashion-MNIST from {Path.GetFullPath(directory)}");

    // One copy of the images: from_array shares the array with the tensor (torch.tensor would copy it again).
    private static TaskData ToTensors(FashionMnistSet set)
    {
        const int rowBytes = FashionMnist.ImageSize * sizeof(float);
        var pixels = new float[set.Count, FashionMnist.ImageSize];
        for (int i = 0; i < set.Count; i++) Buffer.BlockCopy(set.Images[i], 0, pixels, i * rowBytes, rowBytes);
        return new TaskData(from_array(pixels), from_array(set.Labels.Select(l => (long)l).ToArray()));
    }

    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}
