using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Tests.Engine;

[TestClass]
public sealed class TaskInputModelTests
{
    /// <summary>Batches of any size give the rows' mean and (population) variance plus the floor, and the likelihood
    /// is the diagonal Gaussian's, computed here in double from the same rows.</summary>
    [TestMethod]
    public void MomentsAndLikelihoodAreTheRowsDiagonalGaussian()
    {
        var random = new Random(3);
        double[][] rows = Enumerable.Range(0, 250)
            .Select(_ => new[] { random.NextDouble() * 4 - 1, 7.0, random.NextDouble() * 100 }).ToArray();
        using var accumulator = new TaskInputModel.Accumulator(3, CPU);
        foreach (var batch in rows.Chunk(64))
        {
            using var x = tensor(batch.SelectMany(r => r.Select(v => (float)v)).ToArray(), [batch.Length, 3]);
            accumulator.Add(x);
        }
        using var model = accumulator.ToModel();

        double[] mean = Enumerable.Range(0, 3).Select(j => rows.Average(r => (double)(float)r[j])).ToArray();
        double[] variance = Enumerable.Range(0, 3).Select(j => rows.Average(r => Math.Pow((float)r[j] - mean[j], 2))).ToArray();
        double floor = TaskInputModel.VarianceFloorShare * variance.Average();
        var storedMean = model.Mean.data<float>().ToArray();
        var storedVariance = model.Variance.data<float>().ToArray();
        for (int j = 0; j < 3; j++)
        {
            Assert.AreEqual(mean[j], storedMean[j], 1e-5 * (1 + Math.Abs(mean[j])), $"mean {j}");
            Assert.AreEqual(variance[j] + floor, storedVariance[j], 1e-5 * (variance[j] + floor), $"variance {j}");
        }
        // The constant feature gets the floor, not 0.
        Assert.AreEqual(floor, storedVariance[1], 1e-5 * floor);

        float[] probe = [0.5f, 6f, 40f];
        using var p = tensor(probe, [1, 3]);
        double expected = -0.5 * Enumerable.Range(0, 3).Sum(j => Math.Pow(probe[j] - storedMean[j], 2) / storedVariance[j] + Math.Log(storedVariance[j]));
        using var actual = model.LogLikelihood(p);
        Assert.AreEqual(expected, actual.item<double>(), 1e-9 * Math.Abs(expected));
    }
}
