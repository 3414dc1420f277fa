namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// Seeds derived from the run's seed, equal in every process: <see cref="HashCode.Combine{T1, T2}"/> is randomized per
/// process, so a seed made with it gives other pixel permutations and batch orders on every run.
/// </summary>
public static class StableSeed
{
    public static int Combine(int seed, int value) => unchecked(seed * 1_000_003 + value);

    public static int Combine(int seed, string text)
    {
        foreach (char c in text) seed = Combine(seed, c);
        return seed;
    }
}
