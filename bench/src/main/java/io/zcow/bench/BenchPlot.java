package io.zcow.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.DoubleStream;
import javax.imageio.ImageIO;

/**
 * The PNG of bench/side-by-side.sh, drawn with headless java.awt: on the left, each tool's median
 * time per disk as a bar relative to qemu-img -t writeback on that disk (1.0 marked, one scale per
 * disk); on the right, the throughput of each stage in MB/s.
 *
 * <p>Usage: {@code BenchPlot PLOT_TSV OUT_PNG [SUBTITLE]}. PLOT_TSV lines are
 * {@code time DISK TOOL SECONDS REFERENCE_SECONDS} or {@code stage LABEL MBPS}, tab-separated;
 * values that are not numbers ("?", "nan") are drawn as "not measured".
 */
public final class BenchPlot {
  private static final int WIDTH = 1600;
  private static final int BAR = 22;
  private static final int GAP = 8;
  private static final int TOP = 70;
  private static final Color INK = new Color(0x20, 0x20, 0x20);
  private static final Color GRID = new Color(0xd0, 0xd0, 0xd0);
  private static final Color ZCOW = new Color(0x2b, 0x6c, 0xb0);
  private static final Color QEMU = new Color(0xc0, 0x5a, 0x2b);
  private static final Color STAGE = new Color(0x3a, 0x8f, 0x5c);

  record TimeBar(String disk, String tool, double seconds, double reference) {
    double ratio() {
      return seconds / reference;
    }
  }

  record StageBar(String label, double mbps) {}

  private BenchPlot() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: BenchPlot PLOT_TSV OUT_PNG [SUBTITLE]");
      System.exit(2);
    }
    List<TimeBar> times = new ArrayList<>();
    List<StageBar> stages = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(args[0]))) {
      String[] f = line.split("\t");
      if (f[0].equals("time") && f.length >= 5) {
        times.add(new TimeBar(f[1], f[2], number(f[3]), number(f[4])));
      } else if (f[0].equals("stage") && f.length >= 3) {
        stages.add(new StageBar(f[1], number(f[2])));
      }
    }
    BufferedImage image = draw(times, stages, args.length > 2 ? args[2] : "");
    ImageIO.write(image, "png", Path.of(args[1]).toFile());
  }

  private static double number(String s) {
    try {
      double v = Double.parseDouble(s);
      return Double.isFinite(v) ? v : Double.NaN;
    } catch (NumberFormatException e) {
      return Double.NaN;
    }
  }

  static BufferedImage draw(List<TimeBar> times, List<StageBar> stages, String subtitle) {
    Map<String, List<TimeBar>> byDisk = new LinkedHashMap<>();
    for (TimeBar t : times) {
      byDisk.computeIfAbsent(t.disk(), d -> new ArrayList<>()).add(t);
    }
    int leftRows = times.size() + byDisk.size() * 2;
    int rightRows = stages.size() + 1;
    int height = TOP + Math.max(leftRows, rightRows) * (BAR + GAP) + 60;
    BufferedImage image = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, WIDTH, height);
      g.setColor(INK);
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
      g.drawString("zcow against qemu-img convert -c (zstd 3, 64 KiB clusters)", 20, 28);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
      g.drawString(subtitle, 20, 48);
      drawTimes(g, byDisk, 20, TOP, WIDTH / 2 - 40);
      drawStages(g, stages, WIDTH / 2 + 20, TOP, WIDTH / 2 - 40);
    } finally {
      g.dispose();
    }
    return image;
  }

  /** Bars of time / qemu-img writeback time, one group per disk, with 1.0 marked. */
  private static void drawTimes(Graphics2D g, Map<String, List<TimeBar>> byDisk, int x, int y, int width) {
    title(g, "median time relative to qemu-img -t writeback (shorter is faster; one scale per disk)", x, y);
    int labelWidth = 300;
    int barX = x + labelWidth;
    int barWidth = width - labelWidth - 150;
    int row = y + 14;
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
    for (Map.Entry<String, List<TimeBar>> e : byDisk.entrySet()) {
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
      g.setColor(INK);
      g.drawString("disk: " + e.getKey(), x, row + BAR - 6);
      row += BAR + GAP;
      int groupTop = row;
      double max = scale(e.getValue().stream().mapToDouble(TimeBar::ratio), 1.2);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
      for (TimeBar b : e.getValue()) {
        bar(g, b.tool(), x + 10, barX, row, b.ratio() / max * barWidth, b.tool().startsWith("qemu") ? QEMU : ZCOW,
            String.format(Locale.ROOT, "%.2f s (%.2fx)", b.seconds(), b.ratio()));
        row += BAR + GAP;
      }
      int one = barX + (int) Math.round(1.0 / max * barWidth);
      g.setColor(GRID.darker());
      g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10, new float[] {5, 4}, 0));
      g.drawLine(one, groupTop - 4, one, row - GAP + 4);
      g.setStroke(new BasicStroke(1));
      row += BAR + GAP;
    }
  }

  private static void title(Graphics2D g, String text, int x, int y) {
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
    g.setColor(INK);
    g.drawString(text, x, y);
  }

  /** The value at the end of a scale: 5% past the largest finite value, at least {@code least}. */
  private static double scale(DoubleStream values, double least) {
    return Math.max(least, values.filter(Double::isFinite).max().orElse(0) * 1.05);
  }

  /** One row: its label, a bar of {@code length} pixels and the value after it; "not measured" for NaN. */
  private static void bar(Graphics2D g, String label, int labelX, int barX, int row, double length, Color color, String value) {
    g.setColor(INK);
    g.drawString(label, labelX, row + BAR - 6);
    if (Double.isFinite(length)) {
      int w = Math.max(1, (int) Math.round(length));
      g.setColor(color);
      g.fillRect(barX, row, w, BAR);
      g.setColor(INK);
      g.drawString(value, barX + w + 6, row + BAR - 6);
    } else {
      g.drawString("not measured", barX + 6, row + BAR - 6);
    }
  }

  /** Bars of MB/s per stage, on one scale. */
  private static void drawStages(Graphics2D g, List<StageBar> stages, int x, int y, int width) {
    title(g, "throughput per stage, MB/s (10^6 bytes/s of source, or of image for writer and dd)", x, y);
    double max = scale(stages.stream().mapToDouble(StageBar::mbps), 1);
    int labelWidth = 330;
    int barX = x + labelWidth;
    int barWidth = width - labelWidth - 90;
    int row = y + 14;
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
    for (StageBar s : stages) {
      Color color = s.label().contains("qemu") ? QEMU : s.label().startsWith("end to end") ? ZCOW : STAGE;
      bar(g, s.label(), x, barX, row, s.mbps() / max * barWidth, color, String.format(Locale.ROOT, "%.0f", s.mbps()));
      row += BAR + GAP;
    }
  }
}
