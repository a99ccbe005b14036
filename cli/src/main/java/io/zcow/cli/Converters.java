package io.zcow.cli;

import io.zcow.qcow2.TargetCache;
import io.zcow.source.SourceCache;
import java.time.Duration;
import java.util.Locale;
import java.util.StringJoiner;
import picocli.CommandLine;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * The command line's value types, registered once on the root command ({@link #register}): sizes,
 * durations, on/off switches and the enums, so options are typed fields and a bad value is one
 * line naming the option (picocli adds "Invalid value for option '--x':").
 */
final class Converters {
  private Converters() {}

  static void register(CommandLine cl) {
    cl.registerConverter(SizeValue.class, SizeValue::parse);
    cl.registerConverter(Duration.class, Converters::duration);
    cl.registerConverter(Progress.Mode.class, lowerCase(Progress.Mode.class));
    cl.registerConverter(SourceCache.class, lowerCase(SourceCache.class));
    cl.registerConverter(TargetCache.class, lowerCase(TargetCache.class));
    cl.registerConverter(StatusCommand.Output.class, lowerCase(StatusCommand.Output.class));
  }

  /** 10s, 5m, 1h, 500ms, or a plain number of seconds; never negative. */
  static Duration duration(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    try {
      Duration d;
      if (t.endsWith("ms")) {
        d = Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
      } else {
        char unit = t.charAt(t.length() - 1);
        long n = Long.parseLong(Character.isDigit(unit) ? t : t.substring(0, t.length() - 1));
        d = switch (unit) {
          case 'h' -> Duration.ofHours(n);
          case 'm' -> Duration.ofMinutes(n);
          case 's' -> Duration.ofSeconds(n);
          default -> {
            if (!Character.isDigit(unit)) {
              throw new NumberFormatException(text);
            }
            yield Duration.ofSeconds(n);
          }
        };
      }
      if (d.isNegative()) {
        throw new NumberFormatException(text);
      }
      return d;
    } catch (NumberFormatException | IndexOutOfBoundsException | ArithmeticException e) {
      throw new TypeConversionException("'" + text + "' is not a duration (examples: 500ms, 10s, 5m, 1h)");
    }
  }

  /** on/off (also true/false, yes/no), for options that take a switch's value: {@code --write-cache off}. */
  static final class OnOff implements ITypeConverter<Boolean> {
    @Override
    public Boolean convert(String value) {
      return switch (value.trim().toLowerCase(Locale.ROOT)) {
        case "on", "true", "yes" -> true;
        case "off", "false", "no" -> false;
        default -> throw new TypeConversionException("'" + value + "' is not on or off");
      };
    }
  }

  /** An enum written in lower case on the command line (any case accepted); a bad value lists the good ones. */
  static <E extends Enum<E>> ITypeConverter<E> lowerCase(Class<E> type) {
    return value -> {
      for (E c : type.getEnumConstants()) {
        if (c.name().equalsIgnoreCase(value.trim())) {
          return c;
        }
      }
      throw new TypeConversionException("'" + value + "' is not one of " + names(type));
    };
  }

  static <E extends Enum<E>> String names(Class<E> type) {
    StringJoiner j = new StringJoiner(", ");
    for (E c : type.getEnumConstants()) {
      j.add(c.name().toLowerCase(Locale.ROOT));
    }
    return j.toString();
  }
}
