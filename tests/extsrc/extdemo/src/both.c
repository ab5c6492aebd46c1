/* A compiled twin of both.py, as mypyc ships them: the .py stays beside it. */
#include "add.h"

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "both", "compiled twin", -1, add_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit_both(void)
{
    PyObject *module = PyModule_Create(&definition);
    if (module != NULL && PyModule_AddStringConstant(module, "KIND", "compiled") < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
#else
PyMODINIT_FUNC
initboth(void)
{
    PyObject *module = Py_InitModule("both", add_methods);
    if (module != NULL)
        PyModule_AddStringConstant(module, "KIND", "compiled");
}
#endif
