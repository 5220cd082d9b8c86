#' Save an optimizer to a file and load it back
#'
#' `save_optimizer()` writes the optimizer's class, config and state (every
#' optimizer variable, and the names, shapes and dtypes of the variables it was
#' built on) to one file (checkpoint format 2), atomically: a new file gets
#' the permissions the umask gives, an existing one keeps its own, and file
#' and directory are synced before it returns. `load_optimizer()` rebuilds the
#' optimizer, checking everything in the file first; it also reads files of
#' format 1 (written by earlier versions).
#' The files are the engine's checkpoints: interchangeable with Python's
#' `rmsprop.save_optimizer()` / `rmsprop.load_optimizer()`.
#'
#' A loaded optimizer takes up the saved state when it is built on variables
#' of the same names, shapes and dtypes, in the same order: for an optimizer driven
#' by [optimizer_apply()], at the next `optimizer_apply()` call (with the
#' parameters as they were when it was saved, training continues exactly as
#' it would have without the save). An optimizer whose learning rate is a
#' function cannot be saved.
#'
#' @param optimizer An optimizer from [optimizer_rmsprop()] or
#'   [optimizer_loss_scale()].
#' @param path The file to write or read (`~` is expanded).
#' @param custom_objects `NULL`, or a named list of Python classes the file may
#'   name besides the engine's own (e.g. a Python `LearningRateSchedule`
#'   subclass, by its class name), as Keras' `custom_objects`. Loading never
#'   imports a module or builds a class just because the file names it.
#' @param check_names `TRUE` (the default): the loaded optimizer refuses to be
#'   built on variables whose names differ from the saved ones (an error naming
#'   both lists; same shapes in another order would silently swap their
#'   state). `FALSE` accepts other names (shapes and dtypes are still checked).
#' @return `save_optimizer()`: the absolute path, invisibly.
#'   `load_optimizer()`: the optimizer. Any problem with the file (missing,
#'   truncated, damaged, not a checkpoint, state the optimizer cannot take) is
#'   an error of class `rmsprop_checkpoint_error` naming the file and the
#'   field. The format is described in `docs/checkpoint-format.md` of the
#'   source; files are the same from R and Python.
#' @export
#' @examplesIf rmsprop::engine_available()
#' opt <- optimizer_rmsprop(learning_rate = 0.1, momentum = 0.9)
#' params <- c(a = 1, b = 2)
#' params <- optimizer_apply(opt, c(a = 0.5, b = -0.5), params)
#' path <- tempfile(fileext = ".npz")
#' save_optimizer(opt, path)
#' opt2 <- load_optimizer(path)
#' identical(optimizer_apply(opt, c(0.1, 0.1), params),
#'           optimizer_apply(opt2, c(0.1, 0.1), params))
#' unlink(path)
save_optimizer <- function(optimizer, path) {
  check_optimizer(optimizer, "optimizer")
  path <- check_path(path, "path")
  dir <- dirname(path)
  if (!dir.exists(dir)) {
    rmsprop_abort(sprintf("`path`: cannot save to '%s': the directory '%s' does not exist.",
                          path, dir), class = "rmsprop_argument_error")
  }
  invisible(py_try(engine()$save_optimizer(optimizer, path), environment()))
}

#' @rdname save_optimizer
#' @export
load_optimizer <- function(path, custom_objects = NULL, check_names = TRUE) {
  path <- check_path(path, "path")
  if (!is.null(custom_objects) &&
        (!is.list(custom_objects) || length(custom_objects) == 0L ||
           is.null(names(custom_objects)) || any(!nzchar(names(custom_objects))))) {
    rmsprop_abort(sprintf(
      "`custom_objects` must be NULL or a named list of Python classes; got %s.",
      describe_value(custom_objects)
    ), class = "rmsprop_argument_error")
  }
  if (!is.logical(check_names) || length(check_names) != 1L || is.na(check_names)) {
    arg_error("check_names", "TRUE or FALSE", check_names)
  }
  if (!file.exists(path)) {
    rmsprop_abort(sprintf("`path`: no checkpoint at '%s'.", path),
                  class = c("rmsprop_checkpoint_error", "rmsprop_argument_error"))
  }
  # (py_try: a CheckpointError becomes an rmsprop_checkpoint_error, and the
  # optimizer gets its R class)
  py_try(engine()$load_optimizer(path, custom_objects = custom_objects,
                                 check_names = check_names), environment())
}
