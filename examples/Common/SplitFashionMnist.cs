namespace Microsoft.ML.Apd.Samples;

/// <summary>
/// The Split Fashion-MNIST scenario, defined once for the example, the benchmarks and the tests: five tasks of two
/// classes each (T-shirt/top|Trouser, Pullover|Dress, Coat|Sandal, Shirt|Sneaker, Bag|Ankle boot), images unchanged.
/// </summary>
public static class SplitFashionMnist
{
    /// <summary>The classes of each task, in task order.</summary>
    public static readonly int[][] ClassPairs = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]];

    public static int TaskCount => ClassPairs.Length;

    /// <summary>The task's name: its class names joined by '|', e.g. "T-shirt/top|Trouser".</summary>
    public static string TaskName(int task) => TaskName(ClassPairs[task]);

    /// <summary>The name of a task of these classes.</summary>
    public static string TaskName(IReadOnlyList<int> classes) => string.Join("|", classes.Select(c => FashionMnist.ClassNames[c]));

    /// <summary>Indices of the images of <paramref name="set"/> in one of <paramref name="classes"/>, in data order.</summary>
    public static int[] Rows(FashionMnistSet set, IReadOnlyList<int> classes) =>
        Enumerable.Range(0, set.Count).Where(i => classes.Contains(set.Labels[i])).ToArray();

    /// <summary>The task-local label of class <paramref name="label"/>: its position in <paramref name="classes"/>.</summary>
    public static int LocalLabel(IReadOnlyList<int> classes, int label) => classes.ToList().IndexOf(label);
}
