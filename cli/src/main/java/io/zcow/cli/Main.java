package io.zcow.cli;

import io.zcow.BadInputException;
import java.io.PrintWriter;
import java.lang.reflect.Constructor;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.codegen.docgen.manpage.ManPageGenerator;

/**
 * The {@code zcow} command line. Exit codes: 0 done, 1 the job failed, 2 bad usage or bad input
 * (with a one-line reason on stderr).
 */
@Command(
    name = "zcow",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
      "Backs up block devices and disk images into standard compressed qcow2 images. Reading and compressing are spread over many threads (later: many hosts); one writer packs the compressed clusters into whole, aligned O_DIRECT writes (the cluster-fill cache).",
      "",
      "Environment: ZCOW_LOG_LEVEL sets the level of zcow's log lines (error, warn, info, debug, trace) for every command; ZCOW_DEBUG prints the stack trace of a failure.",
      ""
    },
    subcommands = {BackupCommand.class, ConvertCommand.class, WorkerCommand.class, WriterCommand.class, DevClusterCommand.class,
      VerifyCommand.class, StatusCommand.class, CancelCommand.class, CommandLine.HelpCommand.class,
      AutoComplete.GenerateCompletion.class, ManPageGenerator.class})
public final class Main implements Runnable {
  public static final int EXIT_OK = 0;
  public static final int EXIT_FAILED = 1;
  public static final int EXIT_USAGE = 2;
  /** Environment: the log level of zcow's own loggers (trace, debug, info, warn, error), for every command. */
  public static final String ENV_LOG_LEVEL = "ZCOW_LOG_LEVEL";
  /** Environment: when set, a failure prints its stack trace. */
  public static final String ENV_DEBUG = "ZCOW_DEBUG";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command (try 'zcow --help')");
  }

  public static void main(String[] args) {
    String level = System.getenv(ENV_LOG_LEVEL);
    if (level != null && !level.isBlank()) {
      // Before the first logger exists: slf4j-simple reads its levels once.
      System.setProperty("org.slf4j.simpleLogger.log.io.zcow", level.trim());
    }
    System.exit(execute(args));
  }

  /** Runs the command line and returns the exit code (used by tests instead of {@link #main}). */
  public static int execute(String... args) {
    return commandLine().execute(args);
  }

  static CommandLine commandLine() {
    return commandLine(Environment.system());
  }

  /**
   * The command line whose commands see {@code env}: the process's clock, file systems and
   * interrupts (a test passes its own). Also serves {@code zcow generate-completion} (a bash
   * completion script) and {@code zcow gen-manpage} (AsciiDoc man pages), hidden from the help.
   */
  static CommandLine commandLine(Environment env) {
    CommandLine cl = new CommandLine(new Main(), new Factory(env));
    cl.setExecutionExceptionHandler(Main::onException);
    cl.setParameterExceptionHandler(Main::onBadUsage);
    Converters.register(cl);
    for (String generator : new String[] {"generate-completion", "gen-manpage"}) {
      cl.getSubcommands().get(generator).getCommandSpec().usageMessage().hidden(true);
    }
    return cl;
  }

  /** Makes commands, handing {@link Environment} to those whose constructor takes it. */
  private record Factory(Environment env) implements CommandLine.IFactory {
    @Override
    public <K> K create(Class<K> cls) throws Exception {
      try {
        Constructor<K> c = cls.getDeclaredConstructor(Environment.class);
        c.setAccessible(true);
        return c.newInstance(env);
      } catch (NoSuchMethodException noEnvironment) {
        return CommandLine.defaultFactory().create(cls);
      }
    }
  }

  private static int onBadUsage(CommandLine.ParameterException e, String[] args) {
    PrintWriter err = e.getCommandLine().getErr();
    err.println("zcow: " + firstLine(e.getMessage()));
    err.flush();
    return EXIT_USAGE;
  }

  private static int onException(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
    PrintWriter err = cl.getErr();
    if (e instanceof BadInputException) {
      err.println("zcow: " + firstLine(e.getMessage()));
      err.flush();
      return EXIT_USAGE;
    }
    err.println("zcow: failed: " + firstLine(String.valueOf(e.getMessage())));
    if (Boolean.getBoolean("zcow.debug") || System.getenv(ENV_DEBUG) != null) {
      e.printStackTrace(err);
    }
    err.flush();
    return EXIT_FAILED;
  }

  static String firstLine(String s) {
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** Version from the jar manifest, or "development" when run from classes. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = Main.class.getPackage().getImplementationVersion();
      return new String[] {"zcow " + (v == null ? "development" : v)};
    }
  }
}
