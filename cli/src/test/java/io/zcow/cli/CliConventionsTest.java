package io.zcow.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcow.testkit.ExternalTool;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The command line's shared conventions: one definition of each shared option (mixins), typed
 * values through registered converters, bash completion and man pages generated from the model.
 */
class CliConventionsTest {
  @TempDir Path dir;

  @Test
  void sharedOptionsHaveOneDefinitionInEveryCommand() {
    CommandLine root = Main.commandLine();
    Map<String, String> kafkaKey = new TreeMap<>();
    for (String cmd : List.of("backup", "worker", "writer", "status", "cancel")) {
      CommandLine.Model.CommandSpec spec = root.getSubcommands().get(cmd).getCommandSpec();
      for (String name : List.of("--kafka-config", "--auth-key-file", "--connect-timeout")) {
        OptionSpec o = spec.findOption(name);
        assertTrue(o != null, cmd + " has " + name);
        kafkaKey.merge(name, String.join(" ", o.description()), (a, b) -> {
          assertEquals(a, b, name + " reads the same in " + cmd);
          return a;
        });
      }
    }
    for (String cmd : List.of("backup", "convert")) {
      CommandLine.Model.CommandSpec spec = root.getSubcommands().get(cmd).getCommandSpec();
      for (String name : List.of("--cluster-size", "--range-size", "--level", "--target-cache", "--write-cache")) {
        assertTrue(spec.findOption(name) != null, cmd + " has " + name);
      }
    }
    for (String cmd : List.of("worker", "writer")) {
      assertTrue(root.getSubcommands().get(cmd).getCommandSpec().findOption("--metrics-port") != null, cmd);
    }
  }

  @Test
  void valuesAreConvertedByTypeAndABadOneIsOneLineNamingItsOption() {
    CliRun progress = CliRun.of("convert", "--progress", "loud", "a", "b");
    assertEquals(Main.EXIT_USAGE, progress.exitCode());
    assertEquals("zcow: Invalid value for option '--progress': 'loud' is not one of auto, plain, none",
        progress.err().strip());
    CliRun writeCache = CliRun.of("convert", "--write-cache", "maybe", "a", "b");
    assertEquals(Main.EXIT_USAGE, writeCache.exitCode());
    assertTrue(writeCache.err().contains("'maybe' is not on or off"), writeCache.err());
    CliRun timeout = CliRun.of("status", "--kafka", "127.0.0.1:1", "--connect-timeout", "0");
    assertEquals(Main.EXIT_USAGE, timeout.exitCode());
    assertTrue(timeout.err().contains("--connect-timeout must be 1s to 1h"), timeout.err());
    CliRun size = CliRun.of("convert", "--cluster-size", "lots", "a", "b");
    assertTrue(size.err().contains("'lots' is not a size"), size.err());

    CommandLine cl = Main.commandLine();
    cl.parseArgs("backup", "--progress", "PLAIN", "--write-cache", "off", "--target-cache", "writeback",
        "--checkpoint-interval", "1500ms", "--connect-timeout", "2m", "s", "t");
    BackupCommand b = cl.getSubcommands().get("backup").getCommand();
    assertEquals(Progress.Mode.PLAIN, b.progress);
    assertFalse(b.image.writeCache);
    assertEquals(io.zcow.qcow2.TargetCache.WRITEBACK, b.image.targetCache);
    assertEquals(java.time.Duration.ofMillis(1500), b.checkpointInterval);
    assertEquals(java.time.Duration.ofMinutes(2), b.kafkaClient.connectTimeout());
  }

  @Test
  void generatedHelpersStayOutOfTheHelp() {
    String help = Main.commandLine().getUsageMessage();
    assertFalse(help.contains("generate-completion") || help.contains("gen-manpage"), help);
    assertTrue(help.contains("backup") && help.contains("convert"), help);
  }

  @Test
  void bashCompletionIsGeneratedFromTheCommandModel() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CommandLine cl = Main.commandLine();
    cl.setOut(new java.io.PrintWriter(out, true, StandardCharsets.UTF_8));
    assertEquals(0, cl.execute("generate-completion"));
    String script = out.toString(StandardCharsets.UTF_8);
    assertTrue(script.contains("complete -F _complete_zcow") && script.contains("zcow"), script.substring(0, 400));
    for (String word : List.of("backup", "convert", "worker", "--checkpoint-interval", "--auth-key-file",
        "--metrics-port")) {
      assertTrue(script.contains(word), "completion knows " + word);
    }
  }

  @Test
  void manPagesAreGeneratedForEveryCommandAndRenderWithAsciidoctor() throws Exception {
    Path adoc = dir.resolve("adoc");
    assertEquals(0, Main.commandLine().execute("gen-manpage", "--outdir", adoc.toString()));
    List<String> pages = new ArrayList<>();
    try (Stream<Path> s = Files.list(adoc)) {
      s.map(p -> p.getFileName().toString()).sorted().forEach(pages::add);
    }
    for (String cmd : List.of("zcow", "zcow-backup", "zcow-convert", "zcow-worker", "zcow-writer", "zcow-status")) {
      assertTrue(pages.contains(cmd + ".adoc"), "pages: " + pages);
    }
    assertTrue(Files.readString(adoc.resolve("zcow-backup.adoc")).contains("--checkpoint-interval"));

    Path asciidoctor = ExternalTool.require("asciidoctor", "asciidoctor");
    Path man = Files.createDirectory(dir.resolve("man"));
    Process p = new ProcessBuilder(asciidoctor.toString(), "-b", "manpage", "-D", man.toString(),
        adoc.resolve("zcow-backup.adoc").toString()).redirectErrorStream(true).start();
    String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, said);
    String roff = Files.readString(man.resolve("zcow-backup.1"));
    assertTrue(roff.contains(".TH \"ZCOW\\-BACKUP\" \"1\"") && roff.contains("checkpoint\\-interval"),
        roff.substring(0, Math.min(400, roff.length())));
  }
}
