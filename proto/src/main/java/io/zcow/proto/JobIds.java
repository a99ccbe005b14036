package io.zcow.proto;

import java.util.regex.Pattern;

/**
 * The one rule for job ids, checked wherever an id enters (command line, JobSpec, record key): 1
 * to 100 letters, digits, '.', '_' or '-', starting with a letter or digit. So an id is always a
 * safe name for a file, a ZooKeeper node and a Kafka key: never "." or "..", never a path.
 */
public final class JobIds {
  private static final Pattern VALID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,99}");
  public static final String RULE = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit";

  private JobIds() {}

  /** Null when {@code id} is a valid job id, else why not. */
  public static String problem(String id) {
    if (id == null || id.isEmpty()) {
      return "no job id";
    }
    if (!VALID.matcher(id).matches()) {
      String shown = id.length() > 100 ? id.substring(0, 100) + "…" : id;
      return "job id '" + shown + "' is not " + RULE;
    }
    return null;
  }
}
