using System.Runtime.InteropServices;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd;

/// <summary>
/// Numbers the distinct values of a label column (0, 1, 2, … in order of first appearance) as cursors read them, so a
/// row's label costs a dictionary lookup of its raw value: no boxing and no string per row. Each distinct value is
/// converted to its canonical form (<see cref="LabelColumnType"/>) once. Ids stay the same across cursors of one Fit.
/// </summary>
internal abstract class LabelValueIds
{
    /// <summary>Returned for a missing or non-finite label (NaN, ±Infinity, key 0); such rows are skipped.</summary>
    public const int Missing = -1;

    /// <summary>Canonical value of each id.</summary>
    public abstract IReadOnlyList<object> Values { get; }

    /// <summary>A reader of the current row's label id on <paramref name="row"/> (a cursor of the data).</summary>
    public abstract Func<int> Bind(DataViewRow row);

    public static LabelValueIds Create(LabelColumnType type, DataViewSchema.Column column)
    {
        if (type.IsKey)
        {
            if (type.RawType == typeof(byte)) return new Ids<byte>(column, v => v == 0 ? null : (ulong)v);
            if (type.RawType == typeof(ushort)) return new Ids<ushort>(column, v => v == 0 ? null : (ulong)v);
            if (type.RawType == typeof(uint)) return new Ids<uint>(column, v => v == 0 ? null : (ulong)v);
            return new Ids<ulong>(column, v => v == 0 ? null : v);
        }
        if (type.IsText) return new Ids<ReadOnlyMemory<char>>(column, v => v.ToString(), TextComparer.Instance, v => v.ToString().AsMemory());
        if (type.RawType == typeof(bool)) return new Ids<bool>(column, v => v);
        if (type.RawType == typeof(float)) return new Ids<float>(column, v => float.IsFinite(v) ? v : null);
        if (type.RawType == typeof(double)) return new Ids<double>(column, v => double.IsFinite(v) ? v : null);
        if (type.RawType == typeof(sbyte)) return new Ids<sbyte>(column, v => (long)v);
        if (type.RawType == typeof(byte)) return new Ids<byte>(column, v => (long)v);
        if (type.RawType == typeof(short)) return new Ids<short>(column, v => (long)v);
        if (type.RawType == typeof(ushort)) return new Ids<ushort>(column, v => (long)v);
        if (type.RawType == typeof(int)) return new Ids<int>(column, v => (long)v);
        if (type.RawType == typeof(uint)) return new Ids<uint>(column, v => (long)v);
        if (type.RawType == typeof(long)) return new Ids<long>(column, v => v);
        return new Ids<ulong>(column, v => (long)v);
    }

    /// <summary>Ids of one raw type. <c>canonical</c>: the canonical value, or null when missing or non-finite;
    /// <c>own</c>: a copy of a raw value that outlives the cursor's buffers (text), or null for plain data.</summary>
    private sealed class Ids<T>(DataViewSchema.Column column, Func<T, object?> canonical,
        IEqualityComparer<T>? comparer = null, Func<T, T>? own = null) : LabelValueIds where T : notnull
    {
        private readonly Dictionary<T, int> _ids = new(comparer);
        private readonly List<object> _values = new();

        public override IReadOnlyList<object> Values => _values;

        public override Func<int> Bind(DataViewRow row)
        {
            var getter = row.GetGetter<T>(column);
            T value = default!;
            return () =>
            {
                getter(ref value);
                ref int id = ref CollectionsMarshal.GetValueRefOrNullRef(_ids, value);
                return System.Runtime.CompilerServices.Unsafe.IsNullRef(ref id) ? Add(value) : id;
            };
        }

        private int Add(T value)
        {
            object? c = canonical(value);
            int id = Missing;
            if (c is not null)
            {
                id = _values.Count;
                _values.Add(c);
            }
            _ids.Add(own is null ? value : own(value), id);
            return id;
        }
    }

    private sealed class TextComparer : IEqualityComparer<ReadOnlyMemory<char>>
    {
        public static readonly TextComparer Instance = new();
        public bool Equals(ReadOnlyMemory<char> x, ReadOnlyMemory<char> y) => x.Span.SequenceEqual(y.Span);
        public int GetHashCode(ReadOnlyMemory<char> value) => string.GetHashCode(value.Span);
    }
}
