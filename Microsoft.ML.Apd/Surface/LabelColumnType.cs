using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd;

/// <summary>
/// The type of the label column an APD model was trained on, and the conversions between its values and a canonical
/// boxed form used inside label sets: text → <see cref="string"/>, boolean → <see cref="bool"/>, Single →
/// <see cref="float"/>, Double → <see cref="double"/>, other integers → <see cref="long"/>, keys → <see cref="ulong"/>
/// (the raw, 1-based key). Missing values (NaN, key 0) read as null and are skipped in training, as in ML.NET trainers.
/// </summary>
internal sealed class LabelColumnType : IEquatable<LabelColumnType>
{
    // Persisted codes of the raw types; never renumber.
    private static readonly Type[] RawTypes =
    {
        typeof(ReadOnlyMemory<char>), typeof(bool), typeof(float), typeof(double), typeof(sbyte), typeof(byte),
        typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long), typeof(ulong),
    };

    private LabelColumnType(Type rawType, bool isKey, ulong keyCount, string[]? keyValues)
    {
        RawType = rawType;
        IsKey = isKey;
        KeyCount = keyCount;
        KeyValues = keyValues;
    }

    public Type RawType { get; }
    public bool IsKey { get; }
    public ulong KeyCount { get; }
    /// <summary>The key's KeyValues annotation as text, when it had one.</summary>
    public string[]? KeyValues { get; }

    public bool IsText => RawType == typeof(ReadOnlyMemory<char>);

    public DataViewType DataViewType =>
        IsKey ? new KeyDataViewType(RawType, KeyCount)
        : IsText ? TextDataViewType.Instance
        : RawType == typeof(bool) ? BooleanDataViewType.Instance
        : ColumnTypeOf(RawType);

    private static NumberDataViewType ColumnTypeOf(Type t) =>
        t == typeof(float) ? NumberDataViewType.Single : t == typeof(double) ? NumberDataViewType.Double
        : t == typeof(sbyte) ? NumberDataViewType.SByte : t == typeof(byte) ? NumberDataViewType.Byte
        : t == typeof(short) ? NumberDataViewType.Int16 : t == typeof(ushort) ? NumberDataViewType.UInt16
        : t == typeof(int) ? NumberDataViewType.Int32 : t == typeof(uint) ? NumberDataViewType.UInt32
        : t == typeof(long) ? NumberDataViewType.Int64 : NumberDataViewType.UInt64;

    public const string Expected = "key, text, boolean or numeric scalar";

    /// <summary>The label type of <paramref name="column"/>, or null when it is not a supported label type.</summary>
    public static LabelColumnType? TryCreate(DataViewSchema.Column column)
    {
        var type = column.Type;
        if (type is KeyDataViewType key)
        {
            string[]? names = null;
            var keyValuesColumn = column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
            if (keyValuesColumn?.Type is VectorDataViewType { ItemType: TextDataViewType } kv && kv.Size == (int)key.Count)
            {
                VBuffer<ReadOnlyMemory<char>> buffer = default;
                column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref buffer);
                names = buffer.DenseValues().Select(v => v.ToString()).ToArray();
            }
            return key.Count == 0 ? null : new LabelColumnType(key.RawType, true, key.Count, names);
        }
        if (type is TextDataViewType || type is BooleanDataViewType || type is NumberDataViewType)
            return Array.IndexOf(RawTypes, type.RawType) < 0 ? null : new LabelColumnType(type.RawType, false, 0, null);
        return null;
    }

    /// <summary>Reads the current row's label in canonical form (null when missing).</summary>
    public Func<object?> CreateReader(DataViewRow row, DataViewSchema.Column column)
    {
        if (IsKey)
        {
            if (RawType == typeof(byte)) return Read<byte>(row, column, v => v == 0 ? null : (ulong)v);
            if (RawType == typeof(ushort)) return Read<ushort>(row, column, v => v == 0 ? null : (ulong)v);
            if (RawType == typeof(uint)) return Read<uint>(row, column, v => v == 0 ? null : (ulong)v);
            return Read<ulong>(row, column, v => v == 0 ? null : v);
        }
        if (IsText) return Read<ReadOnlyMemory<char>>(row, column, v => v.ToString());
        if (RawType == typeof(bool)) return Read<bool>(row, column, v => v);
        if (RawType == typeof(float)) return Read<float>(row, column, v => float.IsNaN(v) ? null : v);
        if (RawType == typeof(double)) return Read<double>(row, column, v => double.IsNaN(v) ? null : v);
        if (RawType == typeof(sbyte)) return Read<sbyte>(row, column, v => (long)v);
        if (RawType == typeof(byte)) return Read<byte>(row, column, v => (long)v);
        if (RawType == typeof(short)) return Read<short>(row, column, v => (long)v);
        if (RawType == typeof(ushort)) return Read<ushort>(row, column, v => (long)v);
        if (RawType == typeof(int)) return Read<int>(row, column, v => (long)v);
        if (RawType == typeof(uint)) return Read<uint>(row, column, v => (long)v);
        if (RawType == typeof(long)) return Read<long>(row, column, v => v);
        return Read<ulong>(row, column, v => (long)v);
    }

    private static Func<object?> Read<T>(DataViewRow row, DataViewSchema.Column column, Func<T, object?> canonical)
    {
        var getter = row.GetGetter<T>(column);
        T value = default!;
        return () => { getter(ref value); return canonical(value); };
    }

    /// <summary>
    /// The canonical value PredictedLabel takes for a row that cannot be scored: ML.NET's missing value of the type
    /// (key 0, NaN, empty text) or, for integer and boolean labels, which have none, the default (0, false).
    /// </summary>
    public object Missing =>
        IsKey ? 0UL : IsText ? "" : RawType == typeof(bool) ? false
        : RawType == typeof(float) ? (object)float.NaN : RawType == typeof(double) ? (object)double.NaN : (object)0L;

    /// <summary>A <see cref="ValueGetter{TValue}"/> of this type's raw type that returns the canonical <paramref name="current"/>.</summary>
    public Delegate CreateGetter(Func<object> current)
    {
        if (IsKey)
        {
            if (RawType == typeof(byte)) return Get(current, v => (byte)(ulong)v);
            if (RawType == typeof(ushort)) return Get(current, v => (ushort)(ulong)v);
            if (RawType == typeof(uint)) return Get(current, v => (uint)(ulong)v);
            return Get(current, v => (ulong)v);
        }
        if (IsText) return Get(current, v => ((string)v).AsMemory());
        if (RawType == typeof(bool)) return Get(current, v => (bool)v);
        if (RawType == typeof(float)) return Get(current, v => (float)v);
        if (RawType == typeof(double)) return Get(current, v => (double)v);
        if (RawType == typeof(sbyte)) return Get(current, v => (sbyte)(long)v);
        if (RawType == typeof(byte)) return Get(current, v => (byte)(long)v);
        if (RawType == typeof(short)) return Get(current, v => (short)(long)v);
        if (RawType == typeof(ushort)) return Get(current, v => (ushort)(long)v);
        if (RawType == typeof(int)) return Get(current, v => (int)(long)v);
        if (RawType == typeof(uint)) return Get(current, v => (uint)(long)v);
        if (RawType == typeof(long)) return Get(current, v => (long)v);
        return Get(current, v => (ulong)(long)v);
    }

    private static ValueGetter<T> Get<T>(Func<object> current, Func<object, T> convert) =>
        (ref T value) => value = convert(current());

    /// <summary>Display name of a canonical value (slot names, key values, messages).</summary>
    public string Describe(object value) => value switch
    {
        ulong key when KeyValues is not null && key >= 1 && key <= (ulong)KeyValues.Length => KeyValues[key - 1],
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Orders canonical values: text ordinally, numbers and keys numerically, false before true.</summary>
    public int Compare(object a, object b) =>
        a is string sa ? string.CompareOrdinal(sa, (string)b) : ((IComparable)a).CompareTo(b);

    /// <summary>Adds the key's KeyValues annotation (when it had one) to <paramref name="builder"/>.</summary>
    public void AddKeyValues(DataViewSchema.Annotations.Builder builder)
    {
        if (!IsKey || KeyValues is null) return;
        var names = KeyValues.Select(v => v.AsMemory()).ToArray();
        builder.AddKeyValues(names.Length, TextDataViewType.Instance,
            (ref VBuffer<ReadOnlyMemory<char>> dst) => dst = new VBuffer<ReadOnlyMemory<char>>(names.Length, (ReadOnlyMemory<char>[])names.Clone()));
    }

    public void Write(BinaryWriter writer)
    {
        writer.Write((byte)Array.IndexOf(RawTypes, RawType));
        writer.Write(IsKey);
        writer.Write(KeyCount);
        writer.Write(KeyValues is not null);
        if (KeyValues is not null)
        {
            writer.Write(KeyValues.Length);
            foreach (string name in KeyValues) writer.Write(name);
        }
    }

    public static LabelColumnType Read(BinaryReader reader)
    {
        int code = reader.ReadByte();
        if (code >= RawTypes.Length) throw new InvalidDataException($"Unknown label type code {code}.");
        bool isKey = reader.ReadBoolean();
        ulong count = reader.ReadUInt64();
        var rawType = RawTypes[code];
        bool validKey = rawType == typeof(byte) || rawType == typeof(ushort) || rawType == typeof(uint) || rawType == typeof(ulong);
        if (isKey ? !validKey || count == 0 || count > KeyMax(rawType) : count != 0)
            throw new InvalidDataException($"Invalid label type: {(isKey ? "key" : "")} {rawType.Name} with key count {count}.");
        string[]? names = null;
        if (reader.ReadBoolean())
        {
            int n = reader.ReadInt32();
            if (n < 0 || (ulong)n != count) throw new InvalidDataException("Key values do not match the key count.");
            Engine.ApdLimits.CheckRemaining(reader, n, $"{n:N0} key values");
            names = new string[n];
            for (int i = 0; i < n; i++) names[i] = reader.ReadString();
        }
        return new LabelColumnType(rawType, isKey, count, names);
    }

    private static ulong KeyMax(Type rawType) =>
        rawType == typeof(byte) ? byte.MaxValue : rawType == typeof(ushort) ? ushort.MaxValue
        : rawType == typeof(uint) ? uint.MaxValue : ulong.MaxValue;

    public void WriteValue(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case string s: writer.Write(s); break;
            case bool b: writer.Write(b); break;
            case float f: writer.Write(f); break;
            case double d: writer.Write(d); break;
            case long l: writer.Write(l); break;
            case ulong u: writer.Write(u); break;
            default: throw new InvalidOperationException($"Unexpected label value type {value.GetType()}.");
        }
    }

    public object ReadValue(BinaryReader reader)
    {
        if (IsKey)
        {
            ulong key = reader.ReadUInt64();
            if (key == 0 || key > KeyCount) throw new InvalidDataException($"Key label {key} is outside 1..{KeyCount}.");
            return key;
        }
        if (IsText) return reader.ReadString();
        if (RawType == typeof(bool)) return reader.ReadBoolean();
        if (RawType == typeof(float)) return reader.ReadSingle();
        if (RawType == typeof(double)) return reader.ReadDouble();
        return reader.ReadInt64();
    }

    public bool Equals(LabelColumnType? other) =>
        other is not null && RawType == other.RawType && IsKey == other.IsKey && KeyCount == other.KeyCount;

    public override bool Equals(object? obj) => Equals(obj as LabelColumnType);

    public override int GetHashCode() => HashCode.Combine(RawType, IsKey, KeyCount);

    public override string ToString() => DataViewType.ToString() ?? RawType.Name;
}
