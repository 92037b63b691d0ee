// Prints the vtable slot of every TensorRT method trtforge calls, as a Rust `Slots` literal.
// The compiler computes each index: under the Itanium C++ ABI a pointer to a virtual member
// function holds 1 + (byte offset of its vtable entry). Only these numbers are committed
// (src/trt/sys/slots_*.rs); the headers stay outside the repository.
//
// Build: g++ -std=c++17 -fsyntax-only is not enough; see gen.sh (it also adds the destructor
// slots, which C++ cannot take the address of, from g++'s -fdump-lang-class vtable dump).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include "NvInfer.h"
#if __has_include("NvOnnxParser.h")
#include "NvOnnxParser.h"
#define TRTFORGE_HAVE_PARSER 1
#else
#define TRTFORGE_HAVE_PARSER 0 // TensorRT 10.0-10.13 ship it with onnx-tensorrt
#endif

#if defined(TRT_MAJOR_RTX)
#define TRTFORGE_RTX 1
#else
#define TRTFORGE_RTX 0
#endif
// ILogger/IProgressMonitor derive from IVersionedInterface in TensorRT-RTX and TensorRT 11.
#define TRTFORGE_VERSIONED_LOGGER (TRTFORGE_RTX || NV_TENSORRT_MAJOR >= 11)

template <typename P>
static long vslot(P pmf)
{
    struct
    {
        uintptr_t ptr;
        ptrdiff_t adj;
    } r;
    static_assert(sizeof(pmf) == sizeof(r), "Itanium pointer-to-member layout expected");
    std::memcpy(&r, &pmf, sizeof r);
    if ((r.ptr & 1) == 0)
        return -1; // not virtual: cannot happen for these interfaces
    return static_cast<long>((r.ptr - 1) / sizeof(void*));
}

#define SLOT(field, pmf) std::printf("    %s: %ld,\n", field, vslot(pmf))
#define SOME(field, pmf) std::printf("    %s: Some(%ld),\n", field, vslot(pmf))
#define NONE(field) std::printf("    %s: None,\n", field)
#define VAL(field, v) std::printf("    %s: %ld,\n", field, static_cast<long>(v))

using namespace nvinfer1;
namespace A = nvinfer1::apiv;
#if TRTFORGE_HAVE_PARSER
namespace P = nvonnxparser;
#endif

int main()
{
    std::printf("    header_version: %ld,\n", static_cast<long>(NV_TENSORRT_VERSION));
#if TRTFORGE_HAVE_PARSER
    std::printf("    parser_version: %ld,\n", static_cast<long>(NV_ONNX_PARSER_VERSION));
#endif
    // IBuilder
    SLOT("builder_create_builder_config", &A::VBuilder::createBuilderConfig);
    SLOT("builder_create_network_v2", &A::VBuilder::createNetworkV2);
    SLOT("builder_create_optimization_profile", &A::VBuilder::createOptimizationProfile);
    SLOT("builder_build_serialized_network", &A::VBuilder::buildSerializedNetwork);
    SLOT("builder_set_max_threads", &A::VBuilder::setMaxThreads);
    // IBuilderConfig
    SLOT("config_add_optimization_profile", &A::VBuilderConfig::addOptimizationProfile);
    SLOT("config_create_timing_cache", &A::VBuilderConfig::createTimingCache);
    SLOT("config_set_timing_cache", &A::VBuilderConfig::setTimingCache);
    SLOT("config_get_timing_cache", &A::VBuilderConfig::getTimingCache);
    SLOT("config_set_memory_pool_limit", &A::VBuilderConfig::setMemoryPoolLimit);
    SLOT("config_set_builder_optimization_level", &A::VBuilderConfig::setBuilderOptimizationLevel);
    SLOT("config_set_progress_monitor", &A::VBuilderConfig::setProgressMonitor);
    SLOT("config_set_flag", &A::VBuilderConfig::setFlag);
#if TRTFORGE_RTX
    SOME("config_set_nb_compute_capabilities", &A::VBuilderConfig::setNbComputeCapabilities);
    SOME("config_set_compute_capability", &A::VBuilderConfig::setComputeCapability);
#else
    NONE("config_set_nb_compute_capabilities");
    NONE("config_set_compute_capability");
#endif
    // INetworkDefinition, ITensor
    SLOT("network_get_nb_layers", &A::VNetworkDefinition::getNbLayers);
    SLOT("network_get_nb_inputs", &A::VNetworkDefinition::getNbInputs);
    SLOT("network_get_input", &A::VNetworkDefinition::getInput);
    SLOT("network_get_nb_outputs", &A::VNetworkDefinition::getNbOutputs);
    SLOT("network_get_output", &A::VNetworkDefinition::getOutput);
    SLOT("tensor_get_name", &A::VTensor::getName);
    SLOT("tensor_get_dimensions", &A::VTensor::getDimensions);
    SLOT("tensor_get_type", &A::VTensor::getType);
    SLOT("tensor_is_shape_tensor", &A::VTensor::isShapeTensor);
    // IOptimizationProfile
    SLOT("profile_set_dimensions", &A::VOptimizationProfile::setDimensions);
    SLOT("profile_is_valid", &A::VOptimizationProfile::isValid);
    // IHostMemory, ITimingCache
    SLOT("host_memory_data", &A::VHostMemory::data);
    SLOT("host_memory_size", &A::VHostMemory::size);
    SLOT("timing_cache_serialize", &A::VTimingCache::serialize);
    // IRuntime, ICudaEngine, IExecutionContext
    // Overloaded in TensorRT 10 (a stream-reader variant): pick the (blob, size) one.
    SLOT("runtime_deserialize_cuda_engine",
        static_cast<ICudaEngine* (A::VRuntime::*)(void const*, std::size_t) noexcept>(&A::VRuntime::deserializeCudaEngine));
    SLOT("engine_get_nb_io_tensors", &A::VCudaEngine::getNbIOTensors);
    SLOT("engine_get_io_tensor_name", &A::VCudaEngine::getIOTensorName);
    SLOT("engine_get_tensor_shape", &A::VCudaEngine::getTensorShape);
    SLOT("engine_get_tensor_data_type", &A::VCudaEngine::getTensorDataType);
    SLOT("engine_get_tensor_io_mode", &A::VCudaEngine::getTensorIOMode);
    SLOT("engine_get_nb_optimization_profiles", &A::VCudaEngine::getNbOptimizationProfiles);
    SLOT("engine_get_profile_shape", &A::VCudaEngine::getProfileShape);
    SLOT("engine_create_execution_context", &A::VCudaEngine::createExecutionContext);
    SLOT("context_set_optimization_profile_async", &A::VExecutionContext::setOptimizationProfileAsync);
    SLOT("context_set_input_shape", &A::VExecutionContext::setInputShape);
    SLOT("context_get_tensor_shape", &A::VExecutionContext::getTensorShape);
    SLOT("context_set_tensor_address", &A::VExecutionContext::setTensorAddress);
    SLOT("context_enqueue_v3", &A::VExecutionContext::enqueueV3);
    // nvonnxparser::IParser and IParserError have no mImpl: these index their own vtables.
#if TRTFORGE_HAVE_PARSER
    SLOT("parser_parse_from_file", &P::IParser::parseFromFile);
    SLOT("parser_get_nb_errors", &P::IParser::getNbErrors);
    SLOT("parser_get_error", &P::IParser::getError);
    SLOT("parser_clear_errors", &P::IParser::clearErrors);
    SLOT("parser_error_code", &P::IParserError::code);
    SLOT("parser_error_desc", &P::IParserError::desc);
    SLOT("parser_error_node", &P::IParserError::node);
    SLOT("parser_error_node_name", &P::IParserError::nodeName);
    SLOT("parser_error_node_operator", &P::IParserError::nodeOperator);
#endif
    // Interfaces trtforge implements: ILogger and IProgressMonitor.
    SLOT("logger_log", &ILogger::log);
#if TRTFORGE_VERSIONED_LOGGER
    SOME("logger_get_interface_info", &ILogger::getInterfaceInfo);
    SOME("logger_get_api_language", &ILogger::getAPILanguage);
#else
    NONE("logger_get_interface_info");
    NONE("logger_get_api_language");
#endif
    SLOT("progress_phase_start", &IProgressMonitor::phaseStart);
    SLOT("progress_step_complete", &IProgressMonitor::stepComplete);
    SLOT("progress_phase_finish", &IProgressMonitor::phaseFinish);
    SLOT("progress_get_interface_info", &IProgressMonitor::getInterfaceInfo);
    SLOT("progress_get_api_language", &IProgressMonitor::getAPILanguage);
    // Enum values.
    VAL("dtype_float", DataType::kFLOAT);
    VAL("dtype_half", DataType::kHALF);
    VAL("dtype_int8", DataType::kINT8);
    VAL("dtype_int32", DataType::kINT32);
    VAL("dtype_bool", DataType::kBOOL);
    VAL("dtype_uint8", DataType::kUINT8);
    VAL("dtype_fp8", DataType::kFP8);
    VAL("dtype_bf16", DataType::kBF16);
    VAL("dtype_int64", DataType::kINT64);
    VAL("dtype_int4", DataType::kINT4);
    VAL("io_mode_input", TensorIOMode::kINPUT);
    VAL("io_mode_output", TensorIOMode::kOUTPUT);
    VAL("pool_workspace", MemoryPoolType::kWORKSPACE);
#if TRTFORGE_RTX
    std::printf("    network_flags: 0,\n"); // TensorRT-RTX networks are always strongly typed
#else
    std::printf("    network_flags: %ld,\n", 1L << static_cast<int>(NetworkDefinitionCreationFlag::kSTRONGLY_TYPED));
#endif
    return 0;
}
