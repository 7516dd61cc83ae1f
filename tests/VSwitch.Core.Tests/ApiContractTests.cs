using System.Collections;
using System.Reflection;
using System.Text.Json;
using VSwitch.Api;

namespace VSwitch.Core.Tests;

/// <summary>
/// The API contract (vswitch/VSwitch.Api): it depends on nothing, every record is in its source-generated
/// context, and the context writes exactly what the daemon writes (ASP.NET Core's reflection-based
/// metadata with the web defaults), so vsctl, vswitch-cni and vswitchd cannot drift apart.
/// </summary>
public class ApiContractTests
{
    private static readonly Assembly Contract = typeof(ApiJson).Assembly;

    /// <summary>
    /// The daemon's options: ASP.NET Core's JsonOptions (web defaults, and its relaxed escaping: ' stays ',
    /// where the source generator's default encoder writes \u0027) with camelCase names.
    /// </summary>
    private static readonly JsonSerializerOptions Daemon = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static IEnumerable<object[]> Records() =>
        Contract.GetExportedTypes().Where(t => t != typeof(ApiJson) && !(t.IsAbstract && t.IsSealed)).OrderBy(t => t.Name).Select(t => new object[] { t });

    [Fact]
    public void The_contract_references_nothing_but_the_framework()
    {
        var references = Contract.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.All(references, name => Assert.True(name == "netstandard" || name == "System" || name.StartsWith("System.", StringComparison.Ordinal),
            $"VSwitch.Api references {name}: the contract must stay free of the datapath, ASP.NET Core and packages"));
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Every_record_has_source_generated_metadata(Type record)
    {
        Assert.NotNull(ApiJson.Default.GetTypeInfo(record));
        Assert.True(record.IsSealed, $"{record.Name} should be sealed: a derived type would not be on the wire");
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Clients_and_the_daemon_write_the_same_json(Type record)
    {
        foreach (bool nulls in new[] { false, true })
        {
            object value = Sample(record, nulls);
            string generated = JsonSerializer.Serialize(value, record, ApiJson.Default);
            string reflected = JsonSerializer.Serialize(value, record, Daemon);
            // The same document: names, order, values, nulls (how a string escapes a character is the encoder's choice).
            Assert.Equal(Canonical(reflected), Canonical(generated));
            // And what one end writes, the other reads back as it was.
            object back = JsonSerializer.Deserialize(reflected, record, ApiJson.Default)!;
            Assert.Equal(Canonical(generated), Canonical(JsonSerializer.Serialize(back, record, ApiJson.Default)));
            Assert.Equal(Canonical(reflected), Canonical(JsonSerializer.Serialize(JsonSerializer.Deserialize(generated, record, Daemon), record, Daemon)));
        }
    }

    [Fact]
    public void Requests_leave_out_what_the_client_did_not_set()
    {
        Assert.Equal("""{"name":"blue","vlan":5}""", JsonSerializer.Serialize(new NetworkRequest { Name = "blue", Vlan = 5 }, ApiJson.Default.NetworkRequest));
        Assert.Equal("""{"network":"blue","netns":"ns1","source":"vsctl"}""",
            JsonSerializer.Serialize(new AttachRequest("blue", "ns1", null, null, null, null, "vsctl"), ApiJson.Default.AttachRequest));
        Assert.Equal("""{"spec":"icmp"}""", JsonSerializer.Serialize(new TraceRequest("icmp", null, null), ApiJson.Default.TraceRequest));
        Assert.Equal("{}", JsonSerializer.Serialize(new LiveTraceRequest(null, null, null), ApiJson.Default.LiveTraceRequest));
    }

    [Fact]
    public void Responses_write_every_member_nulls_included()
    {
        Assert.Equal("""{"network":"blue","vlan":0,"mac":"02:00:00:00:00:01","port":"p1","ageSeconds":1.5,"static":false,"vtep":null}""",
            JsonSerializer.Serialize(new FdbEntryView("blue", 0, "02:00:00:00:00:01", "p1", 1.5, false), ApiJson.Default.FdbEntryView));
    }

    [Fact]
    public void An_error_is_its_message_with_the_bad_token_only_for_syntax()
    {
        Assert.Equal("""{"error":"no network named 'red'"}""", JsonSerializer.Serialize(new ApiErrorBody("no network named 'red'"), Daemon));
        Assert.Equal("""{"error":"bad rule: unknown field 'nw_dts'","token":"nw_dts=1","position":0}""",
            JsonSerializer.Serialize(new ApiErrorBody("bad rule: unknown field 'nw_dts'") { Token = "nw_dts=1", Position = 0 }, Daemon));
        // A client reads any error answer; one without a token has none.
        var plain = JsonSerializer.Deserialize("""{"error":"x"}""", ApiJson.Default.ApiErrorBody)!;
        Assert.Null(plain.Token);
        Assert.Null(plain.Position);
    }

    /// <summary>A JSON document as text with its strings unescaped: equal for equal documents, property order included.</summary>
    private static string Canonical(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var sb = new System.Text.StringBuilder();
        Write(doc.RootElement);
        return sb.ToString();

        void Write(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    sb.Append('{');
                    foreach (var p in e.EnumerateObject()) { sb.Append('<').Append(p.Name).Append(">:"); Write(p.Value); sb.Append(','); }
                    sb.Append('}');
                    break;
                case JsonValueKind.Array:
                    sb.Append('[');
                    foreach (var x in e.EnumerateArray()) { Write(x); sb.Append(','); }
                    sb.Append(']');
                    break;
                case JsonValueKind.String: sb.Append('<').Append(e.GetString()).Append('>'); break;
                default: sb.Append(e.GetRawText()); break;
            }
        }
    }

    // ---- samples: every member set (or every nullable member null), built from the record's shape ----

    private static readonly NullabilityInfoContext Nullability = new();

    private static object Sample(Type type, bool nulls)
    {
        var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var args = ctor.GetParameters().Select(p => nulls && Nullability.Create(p).WriteState == NullabilityState.Nullable ? null : Value(p.ParameterType, nulls)).ToArray();
        object o = ctor.Invoke(args);
        foreach (var prop in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (prop.SetMethod is null || ctor.GetParameters().Any(p => string.Equals(p.Name, prop.Name, StringComparison.OrdinalIgnoreCase))) continue;
            bool nullable = Nullability.Create(prop).WriteState == NullabilityState.Nullable;
            prop.SetValue(o, nulls && nullable ? null : Value(prop.PropertyType, nulls));
        }
        return o;
    }

    private static object Value(Type t, bool nulls)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(string)) return "a \"text\" <é>";
        if (t == typeof(int)) return 7;
        if (t == typeof(long)) return 1L << 40;
        if (t == typeof(double)) return 0.25;
        if (t == typeof(bool)) return true;
        if (t == typeof(DateTime)) return new DateTime(2025, 1, 2, 3, 4, 5, 678, DateTimeKind.Utc);
        if (t.IsArray)
        {
            var a = Array.CreateInstance(t.GetElementType()!, 2);
            for (int i = 0; i < a.Length; i++) a.SetValue(Value(t.GetElementType()!, nulls), i);
            return a;
        }
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            var d = (IDictionary)Activator.CreateInstance(t)!;
            d.Add(Value(t.GetGenericArguments()[0], nulls), Value(t.GetGenericArguments()[1], nulls));
            return d;
        }
        if (t.Assembly == Contract) return Sample(t, nulls);
        throw new NotSupportedException($"no sample value for {t}: add one here");
    }
}
