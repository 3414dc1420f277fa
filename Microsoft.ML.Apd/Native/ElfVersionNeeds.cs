using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Apd.Native;

/// <summary>
/// Reads and edits the version needs (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF shared library: which
/// symbol versions of which libraries it asks the dynamic loader for.
/// </summary>
internal static class ElfVersionNeeds
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    /// <summary>
    /// Sets VER_FLG_WEAK on every need for <paramref name="version"/> (an Elf64_Vernaux entry), so the loader accepts
    /// a library that lacks that version. Returns the entries changed: 0 if there is no such need or it is weak
    /// already, -1 if <paramref name="elf"/> is not a 64-bit little-endian ELF with a version-need section.
    /// </summary>
    public static int Weaken(Span<byte> elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
            || elf[4] != 2 /* ELFCLASS64 */ || elf[5] != 1 /* little endian */)
            return -1;

        int sectionTable = checked((int)U64(elf, 0x28));
        int sectionSize = U16(elf, 0x3A);
        int sectionCount = U16(elf, 0x3C);
        for (int s = 0; s < sectionCount; s++)
        {
            int header = sectionTable + s * sectionSize;
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;

            int offset = checked((int)U64(elf, header + 0x18));
            int linkedStrings = (int)U32(elf, header + 0x28);
            int strings = checked((int)U64(elf, sectionTable + linkedStrings * sectionSize + 0x18));

            int changed = 0;
            for (int need = offset; ; )
            {
                int auxCount = U16(elf, need + 2);
                int aux = need + (int)U32(elf, need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    int name = strings + (int)U32(elf, aux + 8);
                    int length = elf[name..].IndexOf((byte)0);
                    ushort flags = U16(elf, aux + 4);
                    if (Encoding.ASCII.GetString(elf.Slice(name, length)) == version && (flags & VerFlagWeak) == 0)
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(elf[(aux + 4)..], (ushort)(flags | VerFlagWeak));
                        changed++;
                    }
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint nextNeed = U32(elf, need + 12);
                if (nextNeed == 0) break;
                need += (int)nextNeed;
            }
            return changed;
        }
        return -1;
    }

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    private static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);
}
