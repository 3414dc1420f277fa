using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.ML.Apd.Engine;

namespace Microsoft.ML.Apd.Persistence;

/// <summary>
/// The envelope of our binary entry inside ML.NET's model .zip:
/// <code>
/// magic        8 bytes  "APDMODEL"
/// version      int32    format version (little-endian), currently <see cref="CurrentVersion"/>; it also numbers the
///                       payload's layout (see ApdTransformer.Persistence.cs), so older layouts keep loading
/// length       int64    payload length in bytes
/// payload      length bytes
/// checksum     32 bytes SHA-256 of everything above (magic, version, length, payload)
/// </code>
/// A newer version than this build knows, a wrong magic, a truncated entry, a payload over
/// <see cref="ApdLimits.MaxModelBytes"/> or a checksum mismatch throw <see cref="InvalidDataException"/>.
/// </summary>
internal static class ApdModelFormat
{
    /// <summary>3: this session's format (v1 payload + network format v2 before it); see ApdTransformer.Persistence.cs.</summary>
    public const int CurrentVersion = 3;
    private const int HeaderSize = 8 + 4 + 8, ChecksumSize = 32;
    private static readonly byte[] Magic = "APDMODEL"u8.ToArray();

    public static void Write(Stream stream, ReadOnlySpan<byte> payload)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), CurrentVersion);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(12), payload.Length);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        sha.AppendData(payload);
        stream.Write(header);
        stream.Write(payload);
        stream.Write(sha.GetHashAndReset());
    }

    /// <summary>The verified payload as bytes (tests; the loader reads <see cref="OpenVerified"/>).</summary>
    public static byte[] Read(Stream stream)
    {
        using var payload = OpenVerified(stream, out _);
        var bytes = new byte[payload.Length];
        payload.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>
    /// Checks the envelope — magic, version, declared length against what the stream holds, and the SHA-256 computed
    /// over the payload in chunks — and returns a read-only, seekable stream over the verified payload. Nothing the
    /// size of the declared length is allocated before the checksum matches: a seekable stream (ML.NET extracts the
    /// entry to a temporary file) is hashed in place and then read where it lies; another stream is buffered as its
    /// bytes arrive, so it costs what it holds, not what it declares.
    /// </summary>
    public static Stream OpenVerified(Stream stream, out int version)
    {
        var header = new byte[HeaderSize];
        ReadExactly(stream, header, "header");
        if (!header.AsSpan(0, 8).SequenceEqual(Magic))
            throw new InvalidDataException("This is not an APD model entry (wrong magic bytes).");
        version = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
        if (version > CurrentVersion)
            throw new InvalidDataException(
                $"The APD model was written in format version {version}, newer than this Microsoft.ML.Apd reads (up to {CurrentVersion}). Upgrade Microsoft.ML.Apd to load it.");
        if (version is < 1 or 2)
            throw new InvalidDataException($"Invalid APD model format version {version}.");
        long length = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(12));
        if (length < 0 || length > ApdLimits.MaxModelBytes || (stream.CanSeek && length > stream.Length - stream.Position - ChecksumSize))
            throw new InvalidDataException($"The APD model entry is corrupted or truncated (payload length {length}).");

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(header);
        Stream payload;
        if (stream.CanSeek)
        {
            long start = stream.Position;
            Copy(stream, length, sha, destination: null);
            payload = new PayloadStream(stream, start, length);
        }
        else
        {
            var buffer = new MemoryStream();
            Copy(stream, length, sha, buffer);
            buffer.Position = 0;
            payload = buffer;
        }
        var checksum = new byte[ChecksumSize];
        ReadExactly(stream, checksum, "checksum");
        if (!sha.GetHashAndReset().AsSpan().SequenceEqual(checksum))
            throw new InvalidDataException("The APD model entry is corrupted: its SHA-256 checksum does not match.");
        payload.Position = 0;
        return payload;
    }

    /// <summary>Reads <paramref name="length"/> bytes in chunks into the hash (and <paramref name="destination"/>).</summary>
    private static void Copy(Stream stream, long length, IncrementalHash sha, Stream? destination)
    {
        var chunk = new byte[(int)Math.Min(length, 1 << 20)];
        for (long done = 0; done < length;)
        {
            int n = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, length - done));
            if (n == 0) throw new InvalidDataException("The APD model entry is truncated (in its payload).");
            sha.AppendData(chunk, 0, n);
            destination?.Write(chunk, 0, n);
            done += n;
        }
    }

    /// <summary>A read-only window [start, start + length) of a seekable stream, which stays open.</summary>
    private sealed class PayloadStream : Stream
    {
        private readonly Stream _inner;
        private readonly long _start, _length;
        private long _position;

        public PayloadStream(Stream inner, long start, long length) => (_inner, _start, _length) = (inner, start, length);

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => _length;
        public override long Position
        {
            get => _position;
            set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = (int)Math.Clamp(_length - _position, 0, buffer.Length);
            if (n == 0) return 0;
            _inner.Position = _start + _position;
            n = _inner.Read(buffer[..n]);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static void ReadExactly(Stream stream, byte[] buffer, string part)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"The APD model entry is truncated (in its {part}).", e);
        }
    }
}
