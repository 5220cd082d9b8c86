# options(rmsprop.num_threads): how many threads the engine's compiled kernel
# may use for one large update (see rmsprop_python_config()$threads). Read
# at every optimizer_apply() -- one getOption() and identical() when it has
# not changed -- and passed to the engine when it has.

sync_num_threads <- function() {
  wanted <- getOption("rmsprop.num_threads")
  if (identical(wanted, .rmsprop$num_threads)) return(invisible())
  if (!is.null(wanted) &&
      !(is.numeric(wanted) && length(wanted) == 1L && is.null(dim(wanted)) &&
        !is.na(wanted) && wanted >= 1 && wanted == floor(wanted) && wanted < 2^31)) {
    rmsprop_abort(sprintf(paste0("Option `rmsprop.num_threads` must be NULL or a whole ",
                                 "number of at least 1; got %s."), describe_value(wanted)),
                  class = "rmsprop_argument_error")
  }
  py_try(engine()$set_num_threads(if (is.null(wanted)) NULL else as.integer(wanted)))
  .rmsprop$num_threads <- wanted
  invisible()
}
