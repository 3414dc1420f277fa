using Microsoft.ML.Apd.Engine;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd;

/// <summary>
/// A task's rows streamed from the <see cref="IDataView"/> every epoch through a shuffle pool of at most
/// <c>poolRows</c> rows; memory is O(pool + batch) whatever the task's size.
/// </summary>
/// <remarks>
/// The shuffle of one epoch, all random numbers drawn from the task's generator (so a seed fixes it):
/// <list type="bullet">
/// <item>Task no larger than the pool: the rows are read in the data's order and visited in the order of one
/// <c>randperm</c>, exactly as when the task is held in memory (<see cref="TensorBatchSource"/>).</item>
/// <item>Larger task: the cursor is shuffled by the data view itself when it can (<see cref="IDataView.CanShuffle"/>;
/// ML.NET's binary <c>.idv</c> loader then reads its blocks in random order through a pool of a few blocks), and its
/// rows pass through a pool: the pool fills with the first rows, then each row emitted is a uniformly random row of the
/// pool whose place the next row takes; at the end the rest of the pool is emitted in random order (ML.NET's
/// <c>ShuffleRows</c> works the same way). A row can thus move anywhere earlier and up to about a pool's length later.</item>
/// </list>
/// </remarks>
internal sealed class StreamedBatchSource : IBatchSource
{
    private readonly TrainingRows _rows;
    private readonly string _task;
    private readonly int[] _classOfLabelId;
    private readonly int _poolRows;
    private readonly Device _device;
    private int _epoch;

    /// <summary><paramref name="rowCount"/>: the task's usable rows, counted by the first pass (each epoch must find as
    /// many); <paramref name="classOfLabelId"/>: class index of each label id of <see cref="TrainingRows.Labels"/>
    /// (−1: not this task's); <paramref name="poolRows"/>: the shuffle pool's size; randperm and seeds are drawn on
    /// <paramref name="device"/>, the generator's.</summary>
    public StreamedBatchSource(TrainingRows rows, string task, long rowCount, int[] classOfLabelId, int poolRows, Device device)
    {
        _rows = rows;
        _task = task;
        RowCount = rowCount;
        _classOfLabelId = classOfLabelId;
        _poolRows = poolRows;
        _device = device;
    }

    public long RowCount { get; }

    public IEnumerable<(Tensor Features, Tensor Labels)> Epoch(int batchSize, Generator generator, CancellationToken cancellation)
    {
        int size = _rows.FeatureCount;
        int capacity = (int)Math.Min(RowCount, Math.Min(_poolRows, Array.MaxLength / size));
        bool wholeTask = RowCount <= capacity;
        Random? picks = null, sourceOrder = null;
        if (!wholeTask)
        {
            using var seeds = randint(int.MaxValue, [2], dtype: ScalarType.Int64, device: _device, generator: generator).cpu();
            sourceOrder = new Random((int)seeds[0].item<long>());
            picks = new Random((int)seeds[1].item<long>());
        }
        var pool = new float[(long)capacity * size];
        var poolLabels = new long[capacity];
        using var batch = new Batch(batchSize, size);
        long emitted = 0;
        using var cursor = _rows.Open(_task, _classOfLabelId, sourceOrder, $"epoch {++_epoch} of task '{_task}'");

        int filled = 0;
        while (filled < capacity && Read(cursor, pool.AsSpan(filled * size, size), out poolLabels[filled])) filled++;
        if (filled < capacity) cursor.CheckCount(filled, RowCount, atEnd: true);

        if (wholeTask)
        {
            if (Read(cursor, new float[size], out _)) cursor.CheckCount(filled + 1, RowCount, atEnd: false);
            using var order = randperm(filled, generator: generator, device: _device).cpu();
            foreach (long i in order.data<long>().ToArray())
            {
                cancellation.ThrowIfCancellationRequested();
                if (batch.Add(pool.AsSpan((int)i * size, size), poolLabels[i])) yield return batch.Take();
            }
        }
        else
        {
            while (true)
            {
                int j = picks!.Next(filled);
                if (batch.Add(pool.AsSpan(j * size, size), poolLabels[j])) yield return batch.Take();
                cursor.CheckCount(++emitted, RowCount, atEnd: false);
                if (!Read(cursor, pool.AsSpan(j * size, size), out poolLabels[j]))
                {
                    // The stream has ended: the last pool row moves into the emptied place.
                    filled--;
                    pool.AsSpan(filled * size, size).CopyTo(pool.AsSpan(j * size, size));
                    poolLabels[j] = poolLabels[filled];
                    break;
                }
            }
            for (; filled > 0; filled--)
            {
                cancellation.ThrowIfCancellationRequested();
                int j = picks.Next(filled);
                if (batch.Add(pool.AsSpan(j * size, size), poolLabels[j])) yield return batch.Take();
                pool.AsSpan((filled - 1) * size, size).CopyTo(pool.AsSpan(j * size, size));
                poolLabels[j] = poolLabels[filled - 1];
                emitted++;
            }
            cursor.CheckCount(emitted, RowCount, atEnd: true);
        }
        if (batch.Count > 0) yield return batch.Take();
    }

    private static bool Read(TrainingRows.Cursor cursor, Span<float> features, out long label)
    {
        bool read = cursor.MoveNext(features, out _, out int classIndex);
        label = classIndex;
        return read;
    }

    /// <summary>
    /// Rows gathered for the next mini-batch, in arrays reused for the whole epoch. Each batch handed out is a native
    /// copy of them: TorchSharp's <c>tensor(array)</c> would clone the array into a new managed (large-object) array
    /// per batch, garbage that grows the GC heap with the rows read before a full collection returns it.
    /// </summary>
    private sealed class Batch : IDisposable
    {
        private readonly int _batchSize;
        private readonly int _featureCount;
        private readonly float[] _features;
        private readonly long[] _labels;
        // Views of the arrays (from_array shares their memory) from which each batch is cloned.
        private readonly Tensor _featureView;
        private readonly Tensor _labelView;

        public Batch(int batchSize, int featureCount)
        {
            _batchSize = batchSize;
            _featureCount = featureCount;
            _features = new float[(long)batchSize * featureCount];
            _labels = new long[batchSize];
            using var flat = from_array(_features);
            _featureView = flat.view(batchSize, featureCount);
            _labelView = from_array(_labels);
        }

        public int Count { get; private set; }

        /// <summary>Adds a row; true when the batch is full.</summary>
        public bool Add(ReadOnlySpan<float> features, long label)
        {
            features.CopyTo(_features.AsSpan(Count * _featureCount, _featureCount));
            _labels[Count++] = label;
            return Count == _batchSize;
        }

        /// <summary>The batch as new tensors (native copies), emptying it.</summary>
        public (Tensor, Tensor) Take()
        {
            int n = Count;
            Count = 0;
            using var features = _featureView.narrow(0, 0, n);
            using var labels = _labelView.narrow(0, 0, n);
            return (features.clone(), labels.clone());
        }

        public void Dispose()
        {
            _featureView.Dispose();
            _labelView.Dispose();
        }
    }
}
