namespace Microsoft.ML.Apd.Samples.LargeTask;

/// <summary>
/// One large task made from Fashion-MNIST: every row is a random training image shifted by up to two pixels, with
/// uniform noise, and then permuted by the task's fixed pixel permutation (as in permuted MNIST). The rows are computed
/// on the fly, so a task of millions of rows never exists in memory.
/// </summary>
public sealed class AugmentedImages(FashionMnistSet source, int seed)
{
    private readonly int[] _permutation = Permutation(seed);

    /// <summary><paramref name="count"/> augmented rows, the same for the same seed.</summary>
    public IEnumerable<ImageRow> Rows(long count)
    {
        var random = new Random(seed);
        for (long r = 0; r < count; r++)
        {
            int i = random.Next(source.Count);
            int dx = random.Next(-2, 3), dy = random.Next(-2, 3);
            var shifted = new float[FashionMnist.ImageSize];
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    int sy = y - dy, sx = x - dx;
                    float value = sy is >= 0 and < 28 && sx is >= 0 and < 28 ? source.Images[i][sy * 28 + sx] : 0f;
                    shifted[y * 28 + x] = Math.Clamp(value + (float)(random.NextDouble() - 0.5) * 0.2f, 0f, 1f);
                }
            yield return new ImageRow { Features = Permute(shifted), Label = FashionMnist.ClassNames[source.Labels[i]] };
        }
    }

    /// <summary>The test images, permuted like the task (no shift, no noise).</summary>
    public IEnumerable<ImageRow> Test(FashionMnistSet test)
    {
        for (int i = 0; i < test.Count; i++)
            yield return new ImageRow { Features = Permute(test.Images[i]), Label = FashionMnist.ClassNames[test.Labels[i]] };
    }

    private float[] Permute(float[] image)
    {
        var permuted = new float[image.Length];
        for (int p = 0; p < permuted.Length; p++) permuted[p] = image[_permutation[p]];
        return permuted;
    }

    private static int[] Permutation(int seed)
    {
        var permutation = Enumerable.Range(0, FashionMnist.ImageSize).ToArray();
        new Random(seed).Shuffle(permutation);
        return permutation;
    }
}

/// <summary>One image as an ML.NET row: Features (784 floats) and Label (the class name as text).</summary>
public sealed class ImageRow
{
    [Microsoft.ML.Data.VectorType(FashionMnist.ImageSize)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}
