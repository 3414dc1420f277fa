namespace Microsoft.ML;

/// <summary>Crash-safe, verified saving of any ML.NET model (an APD model or a pipeline containing one).</summary>
public static class AtomicModelSave
{
    /// <summary>
    /// Saves <paramref name="model"/> like <c>ModelOperationsCatalog.Save</c>, but atomically: it writes a temporary file
    /// in the target's directory, flushes it to disk, and only then renames it over <paramref name="path"/>. If
    /// anything fails part-way (an exception while saving, a full disk, a killed process), the file at
    /// <paramref name="path"/> is either the previous one, untouched, or absent if there was none — never a partial
    /// model. Before the rename the written file is read back and loaded, so a file that replaced the target loads. The temporary file is deleted on failure (after a killed process a <c>.*.tmp</c> file may remain next to
    /// the target). The new file gets default permissions, not those of the file it replaces.
    /// </summary>
    /// <param name="catalog"><c>mlContext.Model</c>.</param>
    /// <param name="model">The model to save.</param>
    /// <param name="inputSchema">The model's input schema (may be null, as in <c>Save</c>).</param>
    /// <param name="path">The target file; its directory must exist.</param>
    /// <exception cref="DirectoryNotFoundException">The target's directory does not exist.</exception>
    /// <exception cref="IOException">Writing, verifying (the written file is read back completely and loaded with
    /// <c>mlContext.Model.Load</c>) or renaming failed; the target is unchanged.</exception>
    public static void SaveAtomic(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string path)
        => SaveAtomic(catalog, model, inputSchema, path, file => file);

    /// <summary>As above; ML.NET writes to <paramref name="wrap"/>(temporary file stream), which tests use to inject
    /// failures. The file stream is closed here, not by the wrapper.</summary>
    internal static void SaveAtomic(ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema,
        string path, Func<Stream, Stream> wrap)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string target = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(target) ?? throw new ArgumentException($"'{path}' is not a file path.", nameof(path));
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Cannot save the model to '{target}': directory '{directory}' does not exist.");
        string temp = Path.Combine(directory, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var stream = wrap(file);
                catalog.Save(model, inputSchema, stream);
                stream.Flush();
                if (file.CanWrite) file.Flush(flushToDisk: true);
            }
            Verify(temp, target);
            VerifyLoads(catalog, temp, target);
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Reads the written .zip back completely (central directory, and every entry against its CRC). ML.NET's save does
    /// not always report a failed write at its very end (the zip's central directory), so this check, not the absence
    /// of an exception, decides whether the file may replace the target.
    /// </summary>
    private static void Verify(string temp, string target)
    {
        try
        {
            using var archive = new System.IO.Compression.ZipArchive(File.OpenRead(temp), System.IO.Compression.ZipArchiveMode.Read);
            foreach (var entry in archive.Entries)
            {
                using var content = entry.Open();
                content.CopyTo(Stream.Null);
            }
        }
        catch (InvalidDataException e)
        {
            throw new IOException($"Saving the model to '{target}' failed: the written file is incomplete ({e.Message}). The target was not changed.", e);
        }
    }

    /// <summary>
    /// Loads the written file as <c>mlContext.Model.Load</c> will, and disposes what it loaded: only a file that
    /// deserializes may replace the target, so whatever saves also loads.
    /// </summary>
    private static void VerifyLoads(ModelOperationsCatalog catalog, string temp, string target)
    {
        ITransformer loaded;
        try
        {
            loaded = catalog.Load(temp, out _);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var cause = e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : e;
            throw new IOException($"Saving the model to '{target}' failed: the written file does not load ({cause.Message}). The target was not changed.", e);
        }
        DisposeAll(loaded);
    }

    private static void DisposeAll(ITransformer model)
    {
        if (model is IDisposable disposable) disposable.Dispose();
        else if (model is IEnumerable<ITransformer> chain)
            foreach (var part in chain) DisposeAll(part);
    }
}
