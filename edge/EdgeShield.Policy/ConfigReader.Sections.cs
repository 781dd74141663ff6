using EdgeShield.Policy.Yaml;

namespace EdgeShield.Policy;

internal sealed partial class ConfigReader
{
    private HashSet<string> ReadSerial(KeyMap root) { _ = _diagnostics; return []; }
    private List<ListenerConfig> ReadListeners(KeyMap root, HashSet<string> serialNames, Dictionary<string, YamlNode> policies) { _ = _diagnostics; return []; }
    private void ReadTelemetry(KeyMap root, HashSet<string> serialNames) { _ = _diagnostics; }
    private void ReadAudit(KeyMap root) { _ = _diagnostics; }
    private void ReadHardware(KeyMap root) { _ = _diagnostics; }
    private void ReadNetwork(KeyMap root) { _ = _diagnostics; }
}
