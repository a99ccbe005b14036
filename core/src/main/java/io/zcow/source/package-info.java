/**
 * What a backup reads from: {@link io.zcow.source.Source}, with one class per kind of source
 * ({@link io.zcow.source.FileSource} for regular files and block devices, {@link
 * io.zcow.source.nbd.NbdSource} for NBD exports), opened from text by {@link
 * io.zcow.source.Sources} ({@link io.zcow.source.SourceLocation} says which kind). Holes are found with
 * SEEK_DATA/SEEK_HOLE ({@link io.zcow.source.HoleSeeker}), so a mostly empty disk costs a few
 * calls per data extent; reads may be throttled ({@link io.zcow.source.ThrottledSource}).
 */
package io.zcow.source;
