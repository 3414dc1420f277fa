// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────
// Why this file exists: the one place where Microsoft.ML.Apd documents (and, through MLNetInternal below, wraps)
// its use of ML.NET internals.
//
// ML.NET saves a transformer into its model .zip through ICanSaveModel.Save(ModelSaveContext) and loads it back
// through a static Create(IHostEnvironment, ModelLoadContext) method registered with
// [assembly: LoadableClass(..., typeof(SignatureLoadModel), ...)]. ModelSaveContext, ModelLoadContext, VersionInfo,
// LoadableClassAttribute and SignatureLoadModel are internal to Microsoft.ML.Core, so an extension package cannot
// normally use them. ML.NET's own transformers can because of InternalsVisibleTo.
//
// Besides persistence, a trainer extension needs three more internals that every ML.NET trainer uses:
//  * the MLContext's IHostEnvironment behind ml.MulticlassClassification.Trainers (IInternalCatalog.Environment,
//    internal to Microsoft.ML.Data), so the trainer logs to MLContext.Log and sees CancelExecution();
//  * IHostEnvironmentInternal (Seed, GpuDeviceId, FallbackToCpu) and ICancelable (IsCanceled), in Microsoft.ML.Core;
//  * SchemaShape.Column's constructor (internal in Microsoft.ML.Core), for IEstimator.GetOutputSchema.
//
// ONNX export: mlContext.Model.ConvertToOnnx (package Microsoft.ML.OnnxConverter) transforms its input with the model,
// then walks back from the result through IDataTransform.Source while each step is an ITransformCanSaveOnnx, and
// lets each add its nodes to an OnnxContext (CanSaveOnnx, SaveAsOnnx). IDataTransform, ITransformCanSaveOnnx,
// OnnxContext and OnnxNode are internal to Microsoft.ML.Data; a step that is not one ends the walk, and ML.NET then
// writes a graph taking the model's outputs (Score, PredictedLabel) as inputs. So our scored view implements them
// (Persistence/ApdScoredDataView.Onnx.cs) and writes its graph with OnnxContext (Persistence/ApdOnnxGraph.cs). The
// library does not depend on Microsoft.ML.OnnxConverter: the application that calls ConvertToOnnx brings it.
//
// How: the library compiles against publicized copies of Microsoft.ML.Core.dll and Microsoft.ML.Data.dll (every
// member public; made at build time by build/Publicizer with Mono.Cecil, see Microsoft.ML.Apd.csproj), and tells the
// runtime to skip access checks into those assemblies with IgnoresAccessChecksToAttribute below. At run time the original ML.NET assembly is
// used; no ML.NET code is copied. A fresh MLContext in another process loads our transformer with plain
// mlContext.Model.Load, because ML.NET's ComponentCatalog discovers [assembly: LoadableClass] in loaded assemblies.
//
// Where: only Persistence/ uses these types (ApdTransformer's ICanSaveModel.Save and its loader in
// Persistence/ApdTransformer.Persistence.cs, the ONNX export in Persistence/ApdScoredDataView.Onnx.cs and
// Persistence/ApdOnnxGraph.cs, and the MLNetInternal helpers below, which the Surface code calls).
//
// What breaks if ML.NET changes: a rename or signature change of any internal member we call (ModelSaveContext
// .Writer/.SetVersionInfo/.SaveBinaryStream, ModelLoadContext.CheckAtModel/.Reader/.TryLoadBinaryStream,
// VersionInfo's constructor, LoadableClassAttribute, SignatureLoadModel, IInternalCatalog, IHostEnvironmentInternal,
// ICancelable, SchemaShape.Column's constructor; for ONNX: IDataTransform.Source, ITransformCanSaveOnnx,
// ICanSaveOnnx.CanSaveOnnx(OnnxContext), ISaveAsOnnx.SaveAsOnnx, OnnxContext.ContainsColumn/GetVariableName/
// AddIntermediateVariable/CreateNode/GetNodeName/AddInitializer/CheckOpSetVersion, OnnxNode.AddAttribute) fails at
// compile time against the new Microsoft.ML.Core or Microsoft.ML.Data. A change in how ConvertToOnnx walks a pipeline
// (not through IDataTransform.Source) compiles but brings back the incomplete graph: OnnxExportTests, run by CI with
// both ML.NET versions, compare the exported graph's outputs with Transform's. At run
// time, an application may bring a newer ML.NET than we built against (the package asks for Microsoft.ML >= 5.0.1;
// CI builds and tests against 5.0.1 and 6.0.0): the first use (creating a trainer, loading a model) runs
// MLNetInternal.EnsureAvailable, which resolves every ML.NET type and member this assembly references and throws one
// NotSupportedException naming the ML.NET version and the first missing member, instead of a MissingMethodException
// deep inside. That check reads every ML.NET type and member our metadata references, then loads every type of this
// assembly, so an ML.NET interface whose members changed (e.g. the ONNX ones the scored view implements) is reported
// before any Transform needs that type.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

[assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace Microsoft.ML.Apd.Persistence
{
    /// <summary>The only calls into ML.NET internals outside ICanSaveModel/loader code (see the file comment).</summary>
    internal static class MLNetInternal
    {
        private static readonly Lazy<string?> _missing = new(() => FindMissingMember(typeof(MLNetInternal).Assembly));

        /// <summary>
        /// Throws <see cref="NotSupportedException"/> naming the ML.NET version and the member when the running ML.NET
        /// lacks a type or member this assembly references (checked once per process). Call it before any method that
        /// touches ML.NET internals runs: a missing member fails the JIT of the method that references it.
        /// </summary>
        public static void EnsureAvailable()
        {
            if (_missing.Value is { } member) throw new NotSupportedException(MissingMemberMessage(member));
        }

        internal static string MissingMemberMessage(string member) =>
                    $"Microsoft.ML.Apd {Version(typeof(MLNetInternal).Assembly)} cannot run with Microsoft.ML {Version(typeof(MLContext).Assembly)}: " +
                    $"it uses ML.NET's {member}, which this ML.NET does not have. Microsoft.ML.Apd reaches into ML.NET internals to save, " +
                    "load and train like ML.NET's own trainers, and is tested with Microsoft.ML 5.0.1 and 6.0.0; use one of those, " +
                    "or a Microsoft.ML.Apd release made for this ML.NET.";

        /// <summary>The first ML.NET type or member <paramref name="assembly"/> references that does not resolve, or null.</summary>
        internal static string? FindMissingMember(Assembly assembly)
        {
            if (string.IsNullOrEmpty(assembly.Location)) return null; // single-file app: no metadata file to read
            using var pe = new PEReader(File.OpenRead(assembly.Location));
            return FindMissingMember(assembly.ManifestModule, pe.GetMetadataReader()) ?? FindBrokenImplementation(assembly);
        }

        /// <summary>A type of <paramref name="assembly"/> that fails to load although every reference resolves (an ML.NET
        /// interface it implements, e.g. ITransformCanSaveOnnx, changed its members), described, or null.</summary>
        internal static string? FindBrokenImplementation(Assembly assembly)
        {
            try
            {
                assembly.GetTypes();
                return null;
            }
            catch (ReflectionTypeLoadException e)
            {
                return e.LoaderExceptions.OfType<TypeLoadException>().Select(t => $"interfaces as implemented by {t.TypeName} ({t.Message})").FirstOrDefault();
            }
        }

        /// <summary>The first ML.NET type or member referenced in <paramref name="reader"/>'s metadata that <paramref name="module"/> cannot resolve.</summary>
        internal static string? FindMissingMember(Module module, MetadataReader reader)
        {
            foreach (var type in reader.TypeReferences.Where(t => IsMLNet(reader, t)))
            {
                try { module.ResolveType(MetadataTokens.GetToken(type)); }
                catch (Exception e) when (e is TypeLoadException or FileNotFoundException or FileLoadException) { return TypeName(reader, type); }
            }
            foreach (var handle in reader.MemberReferences)
            {
                var member = reader.GetMemberReference(handle);
                if (member.Parent.Kind != HandleKind.TypeReference || !IsMLNet(reader, (TypeReferenceHandle)member.Parent)) continue;
                try { module.ResolveMember(MetadataTokens.GetToken(handle)); }
                catch (Exception e) when (e is MissingMemberException or TypeLoadException or BadImageFormatException)
                {
                    return $"{TypeName(reader, (TypeReferenceHandle)member.Parent)}.{reader.GetString(member.Name)}";
                }
            }
            return null;
        }

        private static bool IsMLNet(MetadataReader reader, TypeReferenceHandle type)
        {
            var scope = reader.GetTypeReference(type).ResolutionScope;
            while (scope.Kind == HandleKind.TypeReference) scope = reader.GetTypeReference((TypeReferenceHandle)scope).ResolutionScope;
            return scope.Kind == HandleKind.AssemblyReference
                && reader.GetString(reader.GetAssemblyReference((AssemblyReferenceHandle)scope).Name).StartsWith("Microsoft.ML", StringComparison.Ordinal);
        }

        private static string TypeName(MetadataReader reader, TypeReferenceHandle handle)
        {
            var type = reader.GetTypeReference(handle);
            string prefix = type.ResolutionScope.Kind == HandleKind.TypeReference
                ? TypeName(reader, (TypeReferenceHandle)type.ResolutionScope) + "+"
                : reader.GetString(type.Namespace) + ".";
            return prefix + reader.GetString(type.Name);
        }

        private static string Version(Assembly assembly)
            => assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
               ?? assembly.GetName().Version?.ToString() ?? "?";

        /// <summary>The MLContext's environment behind <c>ml.MulticlassClassification.Trainers</c>.</summary>
        public static IHostEnvironment GetEnvironment(MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog)
            => ((IInternalCatalog)catalog).Environment;

        /// <summary>MLContext(seed: …), or null when the context was created without a seed.</summary>
        public static int? Seed(IHostEnvironment env) => (env as IHostEnvironmentInternal)?.Seed;

        /// <summary>MLContext.GpuDeviceId.</summary>
        public static int? GpuDeviceId(IHostEnvironment env) => (env as IHostEnvironmentInternal)?.GpuDeviceId;

        /// <summary>MLContext.FallbackToCpu.</summary>
        public static bool FallbackToCpu(IHostEnvironment env) => (env as IHostEnvironmentInternal)?.FallbackToCpu ?? false;

        /// <summary>True once MLContext.CancelExecution() was called.</summary>
        public static bool IsCanceled(IHostEnvironment env) => env is ICancelable { IsCanceled: true };

        /// <summary>A column of a <see cref="SchemaShape"/> (its constructor is internal to ML.NET).</summary>
        public static SchemaShape.Column ShapeColumn(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType,
            bool isKey, SchemaShape? annotations = null)
            => new(name, kind, itemType, isKey, annotations);

        /// <summary>MLContext.CancelExecution() (internal in ML.NET 5; AutoML and tests use it).</summary>
        public static void CancelExecution(MLContext context) => context.CancelExecution();

        /// <summary>The <see cref="SchemaShape"/> of a schema (SchemaShape.Create is internal to ML.NET).</summary>
        public static SchemaShape ShapeOf(DataViewSchema schema) => SchemaShape.Create(schema);
    }
}

namespace System.Runtime.CompilerServices
{
    /// <summary>Tells the runtime to skip visibility checks from this assembly into the named one.</summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute : Attribute
    {
        public IgnoresAccessChecksToAttribute(string assemblyName) => AssemblyName = assemblyName;

        public string AssemblyName { get; }
    }
}
