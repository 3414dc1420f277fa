namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>
/// One task's rows of a base set (the training or the test images), derived on demand: all at once as tensors, or a
/// chunk at a time for a method that reads rows one by one (APD through ML.NET), which then never holds the task's
/// images — for the full data a permuted copy is 188 MB per training set.
/// </summary>
public sealed class TaskRows(ContinualTask task, TaskData source, int? limit)
{
    /// <summary>Source rows derived together by <see cref="Chunks"/> (3 MB of Fashion-MNIST images).</summary>
    private const int ChunkRows = 1000;

    public ContinualTask Task { get; } = task;

    /// <summary>All the task's rows (at most the limit) as tensors; the caller disposes them.</summary>
    public TaskData Materialize() => Task.Materialize(source, limit);

    /// <summary>
    /// The rows of <see cref="Materialize"/>, in the same order and with the same values, derived from
    /// <see cref="ChunkRows"/> source rows at a time; each chunk is disposed when the next one is asked for.
    /// </summary>
    public IEnumerable<TaskData> Chunks()
    {
        int left = limit ?? int.MaxValue;
        for (int start = 0; start < source.Count && left > 0; start += ChunkRows)
        {
            int count = Math.Min(ChunkRows, source.Count - start);
            using var slice = new TaskData(source.Images.narrow(0, start, count), source.Labels.narrow(0, start, count));
            using var chunk = Task.Materialize(slice, left);
            left -= chunk.Count;
            yield return chunk;
        }
    }
}
