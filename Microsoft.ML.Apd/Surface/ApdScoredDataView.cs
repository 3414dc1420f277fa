using Microsoft.ML.Data;

namespace Microsoft.ML.Apd;

/// <summary>
/// The lazy, streaming result of <see cref="ApdTransformer.Transform"/>. Its cursor reads a block of rows ahead with a
/// second input cursor, groups them by task and runs each task's head once per block; pass-through columns come from
/// a first input cursor moved in lock-step. Both input cursors are unshuffled cursors of the same view, which ML.NET
/// guarantees to yield the same rows in the same order. It also writes itself into ML.NET's ONNX export
/// (Persistence/ApdScoredDataView.Onnx.cs).
/// </summary>
internal sealed partial class ApdScoredDataView : IDataView
{
    /// <summary>Rows scored together.</summary>
    public const int BlockSize = 256;

    private readonly ApdScorer _scorer;
    private readonly IDataView _source;

    public ApdScoredDataView(ApdScorer scorer, IDataView source)
    {
        _scorer = scorer;
        _source = source;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema => _scorer.OutputSchema;

    public long? GetRowCount() => _source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded) active[column.Index] = true;
        return new Cursor(this, active);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ApdScoredDataView _parent;
        private readonly bool[] _active;
        private readonly DataViewRowCursor _input;
        private readonly DataViewRowCursor? _ahead;
        private readonly ApdScorer.RowReader? _reader;
        private readonly ApdPrediction[] _block = new ApdPrediction[BlockSize];
        private readonly float[] _features;
        private readonly string?[] _tasks = new string?[BlockSize];
        private readonly object?[] _labels = new object?[BlockSize];
        private int _blockCount, _blockIndex;

        public Cursor(ApdScoredDataView parent, bool[] active)
        {
            _parent = parent;
            _active = active;
            var scorer = parent._scorer;
            int inputCount = scorer.InputSchema.Count;
            var source = parent._source;
            _input = source.GetRowCursor(source.Schema.Where(c => active[c.Index]));
            bool computed = active.Skip(inputCount).Any(a => a);
            _features = computed ? new float[BlockSize * scorer.FeatureSize] : Array.Empty<float>();
            if (computed)
            {
                bool labelKey = scorer.LabelKeyIndex >= 0 && active[scorer.LabelKeyIndex];
                _ahead = source.GetRowCursor(scorer.ComputedDependencies(labelKey));
                _reader = scorer.CreateReader(_ahead, labelKey);
            }
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override bool MoveNext()
        {
            if (!_input.MoveNext())
                return false;
            if (_ahead is not null && ++_blockIndex >= _blockCount)
                FillBlock();
            return true;
        }

        private void FillBlock()
        {
            var scorer = _parent._scorer;
            int size = scorer.FeatureSize, n = 0;
            while (n < BlockSize && _ahead!.MoveNext())
            {
                (_tasks[n], _labels[n]) = _reader!.Read(_features.AsSpan(n * size, size));
                n++;
            }
            if (n == 0)
                throw new InvalidOperationException("The input view returned fewer rows to a second cursor than to the first; APD scoring needs a deterministic input.");
            scorer.Score(_features, _tasks, _labels, n, _block);
            _blockCount = n;
            _blockIndex = 0;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_active[column.Index])
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            var scorer = _parent._scorer;
            if (column.Index < scorer.InputSchema.Count)
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            return ApdScorer.Cast<TValue>(scorer.CreateComputedGetter(column.Index, () => _block[_blockIndex]), column);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _input.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
