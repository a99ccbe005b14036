/**
 * The project's root exceptions, one unchecked family ({@link io.zcow.ZcowException}) whose
 * branches tell a caller what to do: {@link io.zcow.BadInputException} (the user's input; exit 2),
 * {@link io.zcow.CorruptException} (an image or record is wrong; refuse it),
 * {@link io.zcow.RetriableException} (try again later), and the target's states
 * {@link io.zcow.TargetIoException} (its storage failed; {@link io.zcow.TargetFullException} when
 * full) and {@link io.zcow.TargetLockedException}.
 *
 * <p>This module ({@code zcow-core}) sits below the wire format and the image format, so every
 * role may depend on it: the coordinator reads sources without the worker module, and the wire
 * format does not depend on the image format.
 */
package io.zcow;
