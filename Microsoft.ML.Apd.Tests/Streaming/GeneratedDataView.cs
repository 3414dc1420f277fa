using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd.Tests.Streaming;

/// <summary>
/// A data view whose rows are computed on the fly (nothing is stored), like a file read by a loader: features
/// (a vector of <see cref="Size"/> Single) and a Single label, 0 or 1, = (feature 0 &gt; 0). Each cursor reuses one
/// feature buffer, as ML.NET's loaders do. It counts its cursors and can fail, cancel or emit non-finite rows.
/// </summary>
internal sealed class GeneratedDataView : IDataView
{
    private readonly long _rows;

    public GeneratedDataView(long rows, int size)
    {
        _rows = rows;
        Size = size;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, size));
        builder.AddColumn("Label", NumberDataViewType.Single);
        Schema = builder.ToSchema();
    }

    public int Size { get; }
    public DataViewSchema Schema { get; }
    public bool CanShuffle => false;

    /// <summary>Cursors opened so far.</summary>
    public int CursorsOpened;

    /// <summary>Rows moved to, over all cursors.</summary>
    public long RowsRead;

    /// <summary>(cursor number from 1, row): MoveNext throws an <see cref="IOException"/> there, as a file that disappears.</summary>
    public (int Cursor, long Row)? FailAt;

    /// <summary>Called with (cursor number, row) on every row.</summary>
    public Action<int, long>? OnRow;

    /// <summary>Rows whose index is a multiple of this get a NaN feature (0: none).</summary>
    public int NaNFeatureEvery;

    /// <summary>Rows whose index is a multiple of this get an infinite label (0: none).</summary>
    public int InfiniteLabelEvery;

    /// <summary>Rows the second and later cursors see in addition (a file that grew during Fit).</summary>
    public long ExtraRowsAfterFirstCursor;

    public long? GetRowCount() => null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int number = Interlocked.Increment(ref CursorsOpened);
        return new Cursor(this, number, number == 1 ? _rows : _rows + ExtraRowsAfterFirstCursor);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>Feature d of row i: a fixed pseudo-random value in [−1, 1).</summary>
    public static float Feature(long i, int d) => (float)(((i * 7919 + d * 104729 + i * d * 31) % 2001) / 1000.0 - 1.0);

    private sealed class Cursor(GeneratedDataView view, int number, long rows) : DataViewRowCursor
    {
        private readonly float[] _features = new float[view.Size];
        private long _position = -1;

        public override DataViewSchema Schema => view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override bool MoveNext()
        {
            if (_position + 1 >= rows) return false;
            _position++;
            view.RowsRead++;
            if (view.FailAt is { } f && f.Cursor == number && f.Row == _position)
                throw new IOException($"Simulated read failure: the data file went away at row {_position}.");
            view.OnRow?.Invoke(number, _position);
            for (int d = 0; d < _features.Length; d++) _features[d] = Feature(_position, d);
            if (view.NaNFeatureEvery > 0 && _position % view.NaNFeatureEvery == 0) _features[_features.Length - 1] = float.NaN;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            Delegate getter = column.Name switch
            {
                "Features" => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) => value = new VBuffer<float>(_features.Length, _features)),
                "Label" => (ValueGetter<float>)((ref float value) => value =
                    view.InfiniteLabelEvery > 0 && _position % view.InfiniteLabelEvery == 0 ? float.PositiveInfinity
                    : Feature(_position, 0) > 0 ? 1 : 0),
                _ => throw new ArgumentOutOfRangeException(nameof(column)),
            };
            return (ValueGetter<TValue>)getter;
        }
    }
}
